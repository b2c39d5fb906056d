// evosearch report: a small, dependency-free viewer for one campaign archive.
//
// The archive arrives as JSON in <script id="data">. Its text is untrusted (programs may be written
// by a language model), so every archive string reaches the page through textContent, text nodes or
// attribute values we build ourselves; innerHTML is never used. Views are chosen by the URL hash
// (#program/12) so the page works from file://; when served, it polls data.json for live updates.
'use strict';

(function () {
  const SVG_NS = document.getElementById('svg-ns').namespaceURI; // the SVG namespace, read from an inline <svg>
  const view = document.getElementById('view');
  let DATA = JSON.parse(document.getElementById('data').textContent);
  let byId = new Map();
  let children = new Map();
  let campaignId = null;
  const ui = { island: 'best', sort: 'score', outcome: '', compare: null, against: null, seeds: true, program: null, query: '', dir: -1 }; // view settings that survive live refreshes

  // -- helpers ---------------------------------------------------------------------------------

  // el('a', {href: '#x', class: 'c'}, 'text', child): strings become text nodes, never markup.
  function el(tag, attrs, ...kids) {
    return build(document.createElement(tag), attrs, kids);
  }
  function svg(tag, attrs, ...kids) {
    return build(document.createElementNS(SVG_NS, tag), attrs, kids);
  }
  function build(node, attrs, kids) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, String(v));
    }
    for (const kid of kids.flat()) {
      if (kid !== null && kid !== undefined && kid !== false) node.append(kid);
    }
    return node;
  }

  // Numbers as evosearch.fmt writes them: fixed decimals, never "-0.00" (a small negative that
  // rounds to zero is zero), and durations that keep a decimal under ten seconds ("0.2 s", not "0 s").
  function fmt(v, digits = 3) {
    if (v === null || v === undefined || !Number.isFinite(Number(v))) return '–';
    const text = Number(v).toFixed(digits);
    return Number(text) === 0 ? (0).toFixed(digits) : text;
  }
  function signed(v, digits = 3) { // a change: "+0.200", "-0.100", and "0.000" for none
    const text = fmt(v, digits);
    return Number(text) > 0 ? `+${text}` : text;
  }
  function duration(s) {
    if (s === null || s === undefined || !Number.isFinite(Number(s)) || s < 0) return '–';
    if (Math.round(s * 10) / 10 < 10) return `${Number(s).toFixed(1)} s`;
    const pad = (n) => String(n).padStart(2, '0');
    const whole = Math.round(s);
    if (whole < 60) return `${whole} s`;
    if (whole < 3600) return `${Math.floor(whole / 60)} min ${pad(whole % 60)} s`;
    const minutes = Math.round(s / 60);
    return `${Math.floor(minutes / 60)} h ${pad(minutes % 60)} min`;
  }
  function short(v) { // axis labels: 3 significant digits, no exponent for ordinary ranges
    if (v === null || v === undefined) return '–';
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
    return String(Number(v.toPrecision(3)));
  }
  function ci(p) {
    return p.ci ? `[${fmt(p.ci[0], 2)}, ${fmt(p.ci[1], 2)}]` : '';
  }
  function programLink(id, label) {
    return id === null || id === undefined ? '–' : el('a', { href: `#program/${id}` }, label || `#${id}`);
  }
  function outcomeBadge(p) {
    const o = p.outcome || p.status;
    return el('span', { class: `badge ${o === 'ok' ? 'ok' : o === 'pending' ? 'pending' : 'bad'}` }, o);
  }
  function campaign() {
    return DATA.campaigns.find((c) => c.id === campaignId) || DATA.campaigns[0];
  }
  function programsOf(c) {
    return DATA.programs.filter((p) => p.campaign_id === c.id);
  }

  function reindex() {
    byId = new Map(DATA.programs.map((p) => [p.id, p]));
    children = new Map();
    for (const p of DATA.programs) {
      for (const parent of p.parent_ids.length ? p.parent_ids : p.parent_id ? [p.parent_id] : []) {
        if (!children.has(parent)) children.set(parent, []);
        children.get(parent).push(p.id);
      }
    }
    if (!DATA.campaigns.some((c) => c.id === campaignId)) campaignId = DATA.campaigns.length ? DATA.campaigns[0].id : null;
    const select = document.getElementById('campaign');
    select.replaceChildren(...DATA.campaigns.map((c) => el('option', { value: c.id }, c.name)));
    select.value = String(campaignId);
    select.hidden = DATA.campaigns.length < 2;
    document.getElementById('database').textContent = DATA.database;
    document.title = `evosearch: ${DATA.database}`;
  }

  // -- colour ----------------------------------------------------------------------------------

  const PALETTE = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]]; // viridis stops
  function colour(t) {
    const x = Math.min(1, Math.max(0, t)) * (PALETTE.length - 1);
    const i = Math.min(PALETTE.length - 2, Math.floor(x));
    const f = x - i;
    const rgb = PALETTE[i].map((a, k) => Math.round(a + f * (PALETTE[i + 1][k] - a)));
    return { fill: `rgb(${rgb.join(',')})`, dark: 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 140 };
  }

  // -- charts ----------------------------------------------------------------------------------

  function tickStep(lo, hi, count) {
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    return [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  }
  // The y range widened to whole ticks, so the top label is at or above the highest value
  // (a coverage of 53% under an axis whose last label is 40% reads as 40%).
  function niceRange(lo, hi, count = 5) {
    const step = tickStep(lo, hi, count);
    return [Math.floor(lo / step + 1e-9) * step, Math.ceil(hi / step - 1e-9) * step, step];
  }
  function ticks(lo, hi, count = 5, step = null) {
    if (!(hi > lo)) return [lo];
    step = step || tickStep(lo, hi, count);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
    return out;
  }

  // Every [x, y] a series draws: its line, its band's edges and its seeds' lines (they all set the axes).
  function extentPoints(s) {
    const band = (s.band || []).flatMap(([x, lo, hi]) => [[x, lo], [x, hi]]);
    return s.points.concat(band, ...(s.runs || []));
  }

  // series: [{points: [[x, y]], cls, label, band?: [[x, lo, hi]], runs?: [[[x, y]]]}], vlines: [{x, label}]
  // dots: [{x, y, cls, label, href}], one linked circle each (a scatter of programs).
  function lineChart({ series, xlabel, ylabel, vlines = [], dots = [], width = 560, height = 260, yPercent = false }) {
    const m = { l: 58, r: 12, t: 12, b: 40 };
    const pts = series.flatMap(extentPoints).concat(dots.map((d) => [d.x, d.y])).filter((p) => p[1] !== null && p[1] !== undefined);
    const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img' });
    if (!pts.length) {
      root.append(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'muted' }, 'no data'));
      return root;
    }
    let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
    let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    if (y1 === y0) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
    const pad = (y1 - y0) * 0.05;
    const floor = y0 >= 0 ? 0 : -Infinity; // data that are never negative get no negative axis
    let yStep;
    [y0, y1, yStep] = niceRange(Math.max(floor, y0 - pad), y1 + pad);
    const X = (x) => m.l + ((x - x0) / (x1 - x0)) * (width - m.l - m.r);
    const Y = (y) => height - m.b - ((y - y0) / (y1 - y0)) * (height - m.t - m.b);
    const axes = svg('g', { class: 'axes' });
    for (const t of ticks(y0, y1, 5, yStep)) {
      axes.append(svg('line', { x1: m.l, x2: width - m.r, y1: Y(t), y2: Y(t), class: 'grid' }),
        svg('text', { x: m.l - 6, y: Y(t) + 4, 'text-anchor': 'end' }, yPercent ? `${short(t * 100)}%` : short(t)));
    }
    for (const t of ticks(x0, x1, 6)) {
      axes.append(svg('line', { x1: X(t), x2: X(t), y1: height - m.b, y2: height - m.b + 4 }),
        svg('text', { x: X(t), y: height - m.b + 16, 'text-anchor': 'middle' }, short(t)));
    }
    axes.append(svg('line', { x1: m.l, x2: width - m.r, y1: height - m.b, y2: height - m.b }),
      svg('text', { x: (m.l + width - m.r) / 2, y: height - 6, 'text-anchor': 'middle', class: 'label' }, xlabel),
      svg('text', { x: 12, y: (m.t + height - m.b) / 2, transform: `rotate(-90 12 ${(m.t + height - m.b) / 2})`,
        'text-anchor': 'middle', class: 'label' }, ylabel));
    root.append(axes);
    for (const v of vlines) {
      root.append(svg('line', { x1: X(v.x), x2: X(v.x), y1: m.t, y2: height - m.b, class: 'vline' },
        svg('title', {}, v.label)));
    }
    for (const s of series) if (s.band) drawBand(root, s, X, Y);
    for (const s of series) (s.runs || []).forEach((r, k) => drawLine(root, r, `line seed ${s.cls}`, `${s.label} seed ${k + 1}`, X, Y));
    for (const s of series) drawLine(root, s.points, `line ${s.cls}`, s.label, X, Y);
    for (const d of dots) {
      root.append(svg('a', { href: d.href, class: 'dot-link' },
        svg('circle', { cx: X(d.x).toFixed(1), cy: Y(d.y).toFixed(1), r: 4, class: `dot ${d.cls}` }, svg('title', {}, d.label))));
    }
    return root;
  }

  // One polyline per unbroken run of values: a missing value breaks the line rather than being drawn through.
  function drawLine(root, points, cls, label, X, Y) {
    let run = [];
    const flush = () => {
      if (run.length > 1) root.append(svg('polyline', { points: run.join(' '), class: cls }, svg('title', {}, label)));
      if (run.length === 1) root.append(svg('circle', { cx: run[0].split(',')[0], cy: run[0].split(',')[1], r: 2.5, class: cls.replace('line', 'dot') }));
      run = [];
    };
    for (const [x, y] of points) {
      if (y === null || y === undefined) flush();
      else run.push(`${X(x).toFixed(1)},${Y(y).toFixed(1)}`);
    }
    flush();
  }

  // The seeds' spread (min to max) as a filled area: the mean alone hides seeds that never learn.
  function drawBand(root, s, X, Y) {
    const band = s.band.filter(([, lo, hi]) => lo !== null && hi !== null);
    if (band.length < 2) return;
    const upper = band.map(([x, , hi]) => `${X(x).toFixed(1)},${Y(hi).toFixed(1)}`);
    const lower = band.slice().reverse().map(([x, lo]) => `${X(x).toFixed(1)},${Y(lo).toFixed(1)}`);
    root.append(svg('polygon', { points: upper.concat(lower).join(' '), class: `band ${s.cls}` }, svg('title', {}, `${s.label}: min to max over seeds`)));
  }

  // A chart drawn for the width it gets: scaling a wide one down to a phone would shrink its labels to ~5 px.
  function chartWidth(preferred) {
    return Math.max(280, Math.min(preferred, document.documentElement.clientWidth - 40));
  }

  function legend(series) {
    return el('div', { class: 'legend' }, series.map((s) => el('span', { class: `key ${s.cls}` }, s.label)));
  }

  // -- diff ------------------------------------------------------------------------------------

  // Line diff by longest common subsequence, after trimming the common head and tail (most edits
  // touch a few lines, so the table stays small). Returns [{op: ' '|'-'|'+', a, b, text}].
  function diffLines(a, b) {
    let start = 0;
    while (start < a.length && start < b.length && a[start] === b[start]) start++;
    let endA = a.length;
    let endB = b.length;
    while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
    const A = a.slice(start, endA);
    const B = b.slice(start, endB);
    const n = A.length;
    const m = B.length;
    const out = [];
    for (let k = 0; k < start; k++) out.push({ op: ' ', a: k + 1, b: k + 1, text: a[k] });
    if (n * m > 4e6) { // too large for the table: show the middle as removed, then added
      A.forEach((t, i) => out.push({ op: '-', a: start + i + 1, b: null, text: t }));
      B.forEach((t, j) => out.push({ op: '+', a: null, b: start + j + 1, text: t }));
    } else {
      const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
      for (let i = n - 1; i >= 0; i--) {
        for (let j = m - 1; j >= 0; j--) L[i][j] = A[i] === B[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
      }
      let i = 0;
      let j = 0;
      while (i < n || j < m) {
        if (i < n && j < m && A[i] === B[j]) { out.push({ op: ' ', a: start + i + 1, b: start + j + 1, text: A[i] }); i++; j++; }
        else if (j >= m || (i < n && L[i + 1][j] >= L[i][j + 1])) { out.push({ op: '-', a: start + i + 1, b: null, text: A[i] }); i++; }
        else { out.push({ op: '+', a: null, b: start + j + 1, text: B[j] }); j++; }
      }
    }
    for (let k = 0; k < a.length - endA; k++) out.push({ op: ' ', a: endA + k + 1, b: endB + k + 1, text: a[endA + k] });
    return out;
  }
  window.evosearchDiff = diffLines; // for tests

  function diffTable(rows, context = 3) {
    const changed = rows.map((r) => r.op !== ' ');
    const near = rows.map((_, i) => changed.slice(Math.max(0, i - context), i + context + 1).some(Boolean));
    const body = el('tbody');
    let skipped = 0;
    const flushSkip = () => {
      if (skipped) body.append(el('tr', { class: 'skip' }, el('td', { colspan: 4 }, `⋯ ${skipped} unchanged line${skipped > 1 ? 's' : ''}`)));
      skipped = 0;
    };
    rows.forEach((r, i) => {
      if (!near[i]) { skipped++; return; }
      flushSkip();
      const cls = r.op === '+' ? 'add' : r.op === '-' ? 'del' : '';
      body.append(el('tr', { class: cls }, el('td', { class: 'ln' }, r.a ?? ''), el('td', { class: 'ln' }, r.b ?? ''),
        el('td', { class: 'op' }, r.op), el('td', { class: 'src' }, highlight(r.text))));
    });
    flushSkip();
    return el('table', { class: 'diff', id: 'diff' }, body);
  }

  // -- code ------------------------------------------------------------------------------------

  const KEYWORDS = new Set(('and as assert break class continue def del elif else except finally for from global if import in is '
    + 'lambda nonlocal not or pass raise return try while with yield None True False').split(' '));
  const TOKEN = /(#.*$)|("""|''')|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|\b(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\b|\b([A-Za-z_]\w*)\b/g;

  // A few spans for comments, strings, numbers and keywords; each piece of text is a text node.
  // ``state.quote`` carries an open triple-quoted string from one line to the next.
  function highlight(line, state = { quote: null }) {
    const frag = document.createDocumentFragment();
    let pos = 0;
    const put = (text, cls) => { if (text) frag.append(cls ? el('span', { class: cls }, text) : text); };
    if (state.quote) {
      const end = line.indexOf(state.quote);
      if (end < 0) { put(line, 't-str'); return frag; }
      put(line.slice(0, end + 3), 't-str');
      pos = end + 3;
      state.quote = null;
    }
    TOKEN.lastIndex = pos;
    let m;
    while ((m = TOKEN.exec(line))) {
      put(line.slice(pos, m.index));
      if (m[1]) put(m[1], 't-com');
      else if (m[2]) {
        const end = line.indexOf(m[2], m.index + 3);
        if (end < 0) { put(line.slice(m.index), 't-str'); state.quote = m[2]; pos = line.length; break; }
        put(line.slice(m.index, end + 3), 't-str');
        TOKEN.lastIndex = end + 3;
      } else if (m[3]) put(m[3], 't-str');
      else if (m[4]) put(m[4], 't-num');
      else put(m[5], KEYWORDS.has(m[5]) ? 't-kw' : null);
      pos = TOKEN.lastIndex;
    }
    put(line.slice(pos));
    return frag;
  }

  function lines(source) { // a final newline ends the last line; it does not start an empty one
    return source.replace(/\n$/, '').split('\n');
  }

  function codeBlock(source) {
    const state = { quote: null };
    return el('pre', { class: 'code', id: 'code' }, lines(source).map((line) => el('span', { class: 'line' }, highlight(line, state), '\n')));
  }

  // -- views -----------------------------------------------------------------------------------

  function summary(c) {
    const s = c.stats;
    return el('p', { class: 'summary' },
      el('b', {}, c.name), ` · ${c.status} · ${c.evaluations}${c.max_evals ? ` / ${c.max_evals}` : ''} evaluations · best `,
      c.best_program ? programLink(c.best_program, fmt(s.best)) : '–',
      ` · QD score ${fmt(s.qd_score, 2)} · coverage ${s.cells}/${c.grid.size} cells (${fmt(100 * s.coverage, 1)}%)`);
  }

  function heatmapView() {
    const c = campaign();
    const axes = c.grid.axes;
    const islands = [...Array(c.grid.islands).keys()];
    const select = el('select', { id: 'island', 'aria-label': 'island', onchange: (e) => { ui.island = e.target.value; render(); } },
      el('option', { value: 'best' }, 'best over islands'), islands.map((i) => el('option', { value: i }, `island ${i}`)));
    select.value = islands.includes(Number(ui.island)) ? ui.island : 'best';
    const cells = new Map(); // coords -> the cell shown (the best over islands, or the island's)
    for (const cell of c.cells) {
      if (select.value !== 'best' && cell.island !== Number(select.value)) continue;
      const key = cell.coords.join(',');
      const held = cells.get(key);
      // The islands listed are where this elite lives, not every island that has the cell filled.
      if (!held || cell.score > held.score) cells.set(key, { ...cell, islands: [cell.island] });
      else if (cell.program_id === held.program_id) held.islands.push(cell.island);
    }
    const scores = c.cells.map((x) => x.score); // one colour scale for every island, so views compare
    const [lo, hi] = scores.length ? [Math.min(...scores), Math.max(...scores)] : [null, null];
    const norm = (s) => (hi > lo ? (s - lo) / (hi - lo) : 0.5);
    const nx = axes.length ? axes[0].bins : 1;
    const ny = axes.length > 1 ? axes[1].bins : 1;
    const facets = combos(axes.slice(2).map((a) => a.bins)); // a 3-d grid is shown as one 2-d slice per bin
    const size = Math.max(22, Math.min(facets.length > 1 ? 46 : 72, Math.floor((facets.length > 1 ? 420 : 640) / Math.max(nx, ny))));

    const grids = facets.map((rest) => {
      const m = { l: 90, t: 8, b: 46, r: 8 };
      const w = m.l + nx * size + m.r;
      const h = m.t + ny * size + m.b;
      const root = svg('svg', { class: 'heatmap', viewBox: `0 0 ${w} ${h}`, width: w, height: h });
      for (let x = 0; x < nx; x++) {
        for (let y = 0; y < ny; y++) {
          const coords = axes.length > 1 ? [x, y, ...rest] : [x];
          const cell = cells.get(coords.join(','));
          const px = m.l + x * size;
          const py = m.t + (ny - 1 - y) * size; // the second axis grows upwards
          if (!cell) {
            root.append(svg('rect', { x: px + 1, y: py + 1, width: size - 2, height: size - 2, class: 'empty' },
              svg('title', {}, `${cellName(axes, coords)}: empty`)));
            continue;
          }
          const p = byId.get(cell.program_id);
          const col = colour(norm(cell.score));
          const link = svg('a', { href: `#program/${cell.program_id}`, class: 'cell', 'data-program': cell.program_id, 'data-cell': cell.cell },
            svg('rect', { x: px + 1, y: py + 1, width: size - 2, height: size - 2, fill: col.fill }),
            svg('title', {}, `${cellName(axes, coords)} · program ${cell.program_id} · score ${fmt(cell.score)}`
              + ` · island ${cell.islands.join(', ')}${p ? ` · ${p.operator}` : ''}`));
          if (size >= 40) {
            link.append(svg('text', { x: px + size / 2, y: py + size / 2 - 1, class: col.dark ? 'on-dark' : 'on-light', 'text-anchor': 'middle' }, fmt(cell.score, 2)),
              svg('text', { x: px + size / 2, y: py + size / 2 + 12, class: `small ${col.dark ? 'on-dark' : 'on-light'}`, 'text-anchor': 'middle' }, `#${cell.program_id}`));
          }
          root.append(link);
        }
      }
      if (axes.length) binLabels(root, axes[0], (b) => [m.l + b * size + size / 2, m.t + ny * size + 14], 'middle');
      if (axes.length > 1) binLabels(root, axes[1], (b) => [m.l - 6, m.t + (ny - 1 - b) * size + size / 2 + 4], 'end');
      root.append(svg('text', { x: m.l + (nx * size) / 2, y: h - 8, 'text-anchor': 'middle', class: 'label' }, axes.length ? axes[0].name : ''));
      if (axes.length > 1) {
        const cy = m.t + (ny * size) / 2;
        root.append(svg('text', { x: 12, y: cy, transform: `rotate(-90 12 ${cy})`, 'text-anchor': 'middle', class: 'label' }, axes[1].name));
      }
      const caption = rest.map((b, k) => `${axes[k + 2].name} ${binRange(axes[k + 2], b)}`).join(', ');
      return el('figure', {}, caption ? el('figcaption', {}, caption) : null, root);
    });

    const scale = el('div', { class: 'scale', title: 'colour: the elite\'s score' }, el('span', {}, 'score '), el('span', {}, fmt(lo, 2)),
      el('span', { class: 'bar' }, [0, 0.25, 0.5, 0.75, 1].map((t) => el('i', { class: `c${t * 4}` }))), el('span', {}, fmt(hi, 2)));
    const elites = [...cells.values()].sort((a, b) => b.score - a.score).map((cell) => {
      const p = byId.get(cell.program_id);
      return el('tr', {}, el('td', { class: 'num' }, programLink(cell.program_id)), el('td', { class: 'num' }, fmt(cell.score)),
        el('td', {}, cellName(axes, cell.coords)), el('td', { class: 'num' }, cell.islands.join(', ')),
        el('td', {}, p ? p.operator : ''), el('td', { class: 'note' }, p ? p.note : ''));
    });
    const table = el('table', { class: 'list elites' },
      el('thead', {}, el('tr', {}, ['elite', 'score', 'cell', 'island', 'operator', 'note'].map((h) => el('th', {}, h)))),
      el('tbody', {}, elites.length ? elites : el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'no elites yet'))));
    return [summary(c),
      el('div', { class: 'toolbar' }, el('label', {}, 'Show ', select), scale,
        el('span', { class: 'muted' }, 'Click a cell to open its elite.')),
      el('div', { class: 'facets' }, grids, table), definitions(c)];
  }

  // A cell by what it holds (each axis's bin range), not by its grid index.
  function cellName(axes, coords) {
    return axes.map((a, k) => `${a.name} ${binRange(a, coords[k])}`).join(', ') || 'the only cell';
  }

  // What the colour and the axes mean: the score's normalisation, and each descriptor as the code defines it.
  function definitions(c) {
    const fitness = ((c.config || {}).evaluation || {}).fitness || 'iqm';
    const score = `the ${fitness === 'auc' ? 'area under the learning curve' : 'interquartile mean over tasks and seeds'} of the `
      + 'normalised return (R − R_random) / (R_ref − R_random): 0 is random play, 1 is the suite\'s reference return for the task '
      + '(a trained PPO-clip agent where the suite has one; evosearch suite show lists them).';
    const rows = [['score (colour)', score]].concat(c.grid.axes.map((a) => [`${a.name} (${short(a.min)} to ${short(a.max)}, ${a.bins} bins)`, a.help || '']));
    return el('dl', { class: 'meta defs', id: 'definitions' }, rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  }

  function combos(bins) { // every combination of bins of the axes beyond the second (one grid each)
    return bins.reduce((acc, n) => acc.flatMap((c) => [...Array(n).keys()].map((b) => c.concat(b))), [[]]);
  }
  function binRange(axis, b) {
    const step = (axis.max - axis.min) / axis.bins;
    return `${short(axis.min + b * step)}–${short(axis.min + (b + 1) * step)}`;
  }
  function binLabels(root, axis, at, anchor) {
    for (let b = 0; b < axis.bins; b++) {
      const [x, y] = at(b);
      root.append(svg('text', { x, y, 'text-anchor': anchor, class: 'tick' }, binRange(axis, b)));
    }
  }

  // The programs table's columns: header, sort key (null: not sortable), and cell.
  const PROGRAM_COLUMNS = [
    ['id', (p) => p.id, (p) => el('td', { class: 'num' }, programLink(p.id))],
    ['island', (p) => p.island ?? -1, (p) => el('td', { class: 'num' }, p.island ?? 'all')],
    ['gen', (p) => p.generation, (p) => el('td', { class: 'num' }, p.generation)],
    ['operator', (p) => p.operator, (p) => el('td', {}, p.operator, p.model ? el('span', { class: 'muted' }, ` ${p.model}`) : null)],
    ['outcome', (p) => p.outcome || p.status, (p) => el('td', {}, outcomeBadge(p))],
    ['score', (p) => p.score ?? -Infinity, (p) => el('td', { class: 'num' }, fmt(p.score))],
    ['95% CI', (p) => (p.ci ? p.ci[1] - p.ci[0] : Infinity), (p) => el('td', { class: 'num' }, ci(p))],
    ['time', (p) => p.wall_s ?? -1, (p) => el('td', { class: 'num' }, duration(p.wall_s))],
    ['parent', (p) => p.parent_id ?? -1, (p) => el('td', { class: 'num' }, programLink(p.parent_id))],
    ['note', null, (p) => el('td', { class: 'note' }, p.note)],
  ];

  // Rows matching the outcome filter and every word of the search (id, operator, model, outcome, note).
  function filteredPrograms(rows) {
    const words = ui.query.toLowerCase().split(/\s+/).filter(Boolean);
    return rows.filter((p) => (!ui.outcome || (p.outcome || p.status) === ui.outcome)
      && words.every((w) => `#${p.id} ${p.operator} ${p.model || ''} ${p.outcome || p.status} ${p.note}`.toLowerCase().includes(w)));
  }

  function sortedPrograms(rows) {
    const column = PROGRAM_COLUMNS.find(([h]) => h === ui.sort) || PROGRAM_COLUMNS[5];
    const key = column[1];
    const cmp = (a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
    return rows.slice().sort((a, b) => ui.dir * cmp(a, b) || a.id - b.id);
  }

  function sortHeader([h, key]) {
    if (!key) return el('th', {}, h);
    const active = ui.sort === h;
    const flip = () => { ui.dir = active ? -ui.dir : (h === 'score' ? -1 : 1); ui.sort = h; render(); };
    return el('th', { 'aria-sort': active ? (ui.dir > 0 ? 'ascending' : 'descending') : null },
      el('button', { class: `sort${active ? ' active' : ''}`, 'data-sort': h, onclick: flip }, h, active ? (ui.dir > 0 ? ' ▲' : ' ▼') : ''));
  }

  function programsView() {
    const c = campaign();
    const all = programsOf(c);
    const rows = sortedPrograms(filteredPrograms(all));
    const outcomes = [...new Set(all.map((p) => p.outcome || p.status))].sort();
    const filter = el('select', { 'aria-label': 'outcome', onchange: (e) => { ui.outcome = e.target.value; render(); } },
      el('option', { value: '' }, 'all outcomes'), outcomes.map((o) => el('option', { value: o }, o)));
    filter.value = ui.outcome;
    const search = el('input', { id: 'search', type: 'search', placeholder: 'search operator, model, note, #id', size: 30, value: ui.query, 'aria-label': 'search' });
    search.addEventListener('input', (e) => { ui.query = e.target.value; render(); });
    const body = rows.map((p) => el('tr', {}, PROGRAM_COLUMNS.map(([, , cell]) => cell(p))));
    return [summary(c), el('div', { class: 'toolbar' }, el('span', { id: 'count' }, `${rows.length} of ${all.length} programs`), search, filter,
      el('span', { class: 'muted' }, 'Click a column to sort.')),
    el('div', { class: 'scroll' }, el('table', { class: 'list programs' }, el('thead', {}, el('tr', {}, PROGRAM_COLUMNS.map(sortHeader))), el('tbody', {}, body)))];
  }

  // The program a view is about: the one named in the URL, else the last one opened, else the best.
  // A named program that does not exist is "not found", never silently another one.
  function pickProgram(id) {
    if (id !== null) return byId.get(id) ? remember(byId.get(id)) : null;
    const p = byId.get(ui.program) || byId.get(campaign().best_program) || programsOf(campaign())[0];
    return p ? remember(p) : p;
  }
  function remember(p) {
    if (p.id !== ui.program) { ui.compare = null; ui.against = null; } // another program: its own parent and the best
    ui.program = p.id;
    campaignId = p.campaign_id;
    return p;
  }

  // The top bar's Program, Lineage and Curves links keep the program being looked at.
  function updateNav(r) {
    for (const a of document.querySelectorAll('#nav a')) {
      const v = a.dataset.view;
      a.classList.toggle('active', v === r.name);
      if (['program', 'lineage', 'curves'].includes(v)) a.setAttribute('href', ui.program !== null ? `#${v}/${ui.program}` : `#${v}`);
    }
  }

  function subnav(p, current) {
    return el('div', { class: 'subnav' }, ['program', 'lineage', 'curves'].map((v) =>
      el('a', { href: `#${v}/${p.id}`, class: v === current ? 'active' : '' }, v === 'program' ? 'code & diff' : v)));
  }

  function programHeader(p) {
    return el('h2', {}, `Program #${p.id} `, outcomeBadge(p), p.score !== null ? el('span', { class: 'score' }, ` ${fmt(p.score)} `, el('span', { class: 'muted' }, ci(p))) : null);
  }

  function programView(p) {
    const parent = byId.get(p.parent_id);
    const meta = [
      ['operator', p.operator + (p.model ? ` (${p.model})` : '')],
      ['island', p.island ?? 'all (seed)'], ['generation', p.generation],
      ['parents', p.parent_ids.length ? p.parent_ids.flatMap((id, i) => [i ? ', ' : '', programLink(id)]) : '–'],
      ['stage', p.stage || '–'],
      ['descriptors', Object.entries(p.descriptors).map(([k, v]) => `${k} ${short(v)}`).join(' · ') || '–'],
      ['evaluated', p.evaluated ? p.evaluated.replace('T', ' ').slice(0, 19) : 'not yet'],
      ['resources', resources(p)],
    ];
    if (p.confirmed) meta.push(['confirmed', `${fmt(p.confirmed.score)} ${p.confirmed.ci ? `[${fmt(p.confirmed.ci[0], 2)}, ${fmt(p.confirmed.ci[1], 2)}]` : ''} on ${p.confirmed.seeds} fresh seeds (search score minus confirmed: ${signed(p.score - p.confirmed.score)})`]);
    if (p.duplicate_of) meta.push(['duplicate of', programLink(p.duplicate_of)]);
    if (p.suite) meta.push(['suite', `${p.suite} (${p.fitness})`]);
    const tasks = Object.entries(p.tasks);
    const parts = [subnav(p, 'program'), programHeader(p),
      el('dl', { class: 'meta' }, meta.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]))];
    if (p.note) parts.push(el('p', { class: 'note' }, p.note));
    if (p.error) parts.push(el('h3', {}, 'Error'), el('pre', { class: 'error', id: 'error' }, p.error));
    if (p.output_tail) parts.push(el('details', {}, el('summary', {}, 'output tail'), el('pre', { class: 'error' }, p.output_tail)));
    if (tasks.length) {
      parts.push(el('table', { class: 'list tasks' },
        el('thead', {}, el('tr', {}, ['task', 'mean return', 'normalised', '95% CI', 'AUC'].map((h) => el('th', {}, h)))),
        el('tbody', {}, tasks.map(([name, t]) => el('tr', {}, el('td', {}, name + (t.held_out ? ' (held out)' : '')),
          el('td', { class: 'num' }, fmt(t.mean_return, 1)), el('td', { class: 'num' }, fmt(t.normalized)),
          el('td', { class: 'num' }, t.ci ? `[${fmt(t.ci[0], 2)}, ${fmt(t.ci[1], 2)}]` : '–'), el('td', { class: 'num' }, fmt(t.auc)))))));
    }
    parts.push(...diffSection(p, parent), el('h3', {}, 'Code'), codeBlock(p.source));
    return parts;
  }

  // The diff against the parent, or against any program the reader names (ui.against).
  function diffSection(p, parent) {
    const base = byId.get(ui.against) || parent;
    const input = el('input', { id: 'against', type: 'text', size: 6, placeholder: '#id', value: base ? base.id : '', 'aria-label': 'diff against program' });
    input.addEventListener('change', (e) => { const m = e.target.value.match(/\d+/); ui.against = m ? Number(m[0]) : null; render(); });
    const chooser = el('label', { class: 'muted against' }, ' · diff against #', input);
    const what = base && base === parent ? 'parent ' : '';
    if (!base) {
      return [el('h3', {}, 'Change from parent', chooser), el('p', { class: 'muted', id: 'diff' }, p.parent_id ? `parent #${p.parent_id} is not in this archive` : 'a seed: no parent')];
    }
    const rows = diffLines(lines(base.source), lines(p.source));
    const added = rows.filter((r) => r.op === '+').length;
    const removed = rows.filter((r) => r.op === '-').length;
    const delta = p.score !== null && base.score !== null ? p.score - base.score : null;
    return [el('h3', {}, `Change from ${what}`, programLink(base.id), el('span', { class: 'muted' },
      ` +${added} −${removed} lines${delta !== null ? ` · score ${signed(delta)}` : ''}`), chooser),
    added + removed ? diffTable(rows) : el('p', { class: 'muted', id: 'diff' }, `same text as ${what}#${base.id}`)];
  }

  // What the evaluation cost: wall-clock and CPU time, and the peak memory of its jobs.
  function resources(p) {
    const r = p.resources || {};
    const parts = [r.wall_s !== null && r.wall_s !== undefined ? `${duration(r.wall_s)} wall` : null,
      r.cpu_s !== null && r.cpu_s !== undefined ? `${duration(r.cpu_s)} CPU` : null,
      r.peak_rss_mb !== null && r.peak_rss_mb !== undefined ? `${fmt(r.peak_rss_mb, 0)} MB peak memory` : null].filter(Boolean);
    return parts.join(' · ') || '–';
  }

  function lineageView(p) {
    const seen = new Set();
    const node = (id, depth) => {
      const q = byId.get(id);
      if (!q) return el('li', {}, el('span', { class: 'muted' }, `#${id} (not in this archive)`));
      const parentScore = q.parent_id !== null && byId.get(q.parent_id) ? byId.get(q.parent_id).score : null;
      const delta = q.score !== null && parentScore !== null ? q.score - parentScore : null;
      const line = el('div', { class: `node${q.id === p.id ? ' current' : ''}` }, programLink(q.id), ' ', el('span', { class: 'op' }, q.operator),
        ' ', q.score !== null ? el('b', {}, fmt(q.score)) : outcomeBadge(q),
        delta !== null ? el('span', { class: delta >= 0 ? 'up' : 'down' }, ` ${signed(delta)}`) : null,
        q.note ? el('span', { class: 'muted' }, ` ${q.note}`) : null);
      const parents = q.parent_ids.length ? q.parent_ids : q.parent_id ? [q.parent_id] : [];
      if (seen.has(id) && parents.length) return el('li', {}, line, el('span', { class: 'muted' }, ' (ancestors shown above)'));
      seen.add(id);
      return el('li', {}, line, parents.length && depth < 200 ? el('ul', {}, parents.map((x) => node(x, depth + 1))) : null);
    };
    const kids = children.get(p.id) || [];
    return [subnav(p, 'lineage'), programHeader(p),
      el('p', { class: 'muted' }, 'Ancestors, newest first; a crossover lists both parents. Changes are against the first parent.'),
      el('ul', { class: 'tree', id: 'lineage' }, node(p.id, 0)),
      el('h3', {}, `Children (${kids.length})`),
      kids.length ? el('p', {}, kids.flatMap((k, i) => [i ? ' · ' : '', programLink(k), ` ${fmt(byId.get(k).score)}`])) : el('p', { class: 'muted' }, 'none yet')];
  }

  // The programs drawn over this one: by default its parent and the campaign's best; the reader
  // may name any others (ui.compare, kept across live refreshes).
  function comparedPrograms(p) {
    const c = campaign();
    const ids = ui.compare !== null ? ui.compare : [p.parent_id, c.best_program].filter((x) => x !== null && x !== undefined);
    const seen = new Set([p.id]);
    return ids.filter((id) => !seen.has(id) && seen.add(id) && byId.has(id)).map((id, k) => ({
      q: byId.get(id), cls: id === p.parent_id ? 'parent' : id === c.best_program ? 'best' : `o${k % 4}`,
      label: `${id === p.parent_id ? 'parent' : id === c.best_program ? 'best' : 'program'} #${id}`,
    }));
  }

  // A task's curve as chart data: the mean line, the min–max band over seeds, and (if asked) each seed.
  function curveSeries(curve, cls, label, withSeeds) {
    const x = (i) => (curve.steps ? curve.steps[i] : i + 1);
    const runs = curve.runs || [];
    const band = curve.mean.map((_, i) => {
      const v = runs.map((r) => r[i]).filter((y) => y !== null && y !== undefined);
      return [x(i), v.length ? Math.min(...v) : null, v.length ? Math.max(...v) : null];
    });
    return { cls, label, points: curve.mean.map((y, i) => [x(i), y]), band: runs.length > 1 ? band : null,
      runs: withSeeds ? runs.map((r) => r.slice(0, curve.mean.length).map((y, i) => [x(i), y])) : [] };
  }

  function curvesControls(p, compared) {
    const input = el('input', { id: 'compare', type: 'text', size: 18, placeholder: 'e.g. 12, 40',
      value: compared.map((o) => o.q.id).join(', '), 'aria-label': 'programs to compare' });
    input.addEventListener('change', (e) => { ui.compare = (e.target.value.match(/\d+/g) || []).map(Number); render(); });
    const seeds = el('input', { id: 'seeds', type: 'checkbox', checked: ui.seeds ? 'checked' : null });
    seeds.addEventListener('change', (e) => { ui.seeds = e.target.checked; render(); });
    return el('div', { class: 'toolbar' }, el('label', {}, 'Compare with programs ', input),
      el('label', {}, seeds, ` each seed of #${p.id}`));
  }

  function curvesView(p) {
    const curves = DATA.curves[String(p.id)] || [];
    const compared = comparedPrograms(p);
    const parts = [subnav(p, 'curves'), programHeader(p),
      el('p', { class: 'muted' }, 'Episodic return during training, by environment step: the line is the mean over seeds, '
        + 'the shaded band runs from the worst seed to the best.')];
    if (!curves.length) return parts.concat(el('p', {}, 'No learning curves: this program was not trained.'));
    parts.push(curvesControls(p, compared));
    const grid = el('div', { class: 'charts' });
    for (const curve of curves) {
      const series = [curveSeries(curve, 'this', `#${p.id}`, ui.seeds)];
      for (const { q, cls, label } of compared) {
        const match = (DATA.curves[String(q.id)] || []).find((x) => x.task === curve.task && x.held_out === curve.held_out);
        if (match) series.push(curveSeries(match, cls, label, false));
      }
      const cut = curve.trimmed_step ? ` · last checkpoint (step ${curve.trimmed_step}) left out: a partial interval` : '';
      grid.append(el('figure', {}, el('figcaption', {}, `${curve.task}${curve.held_out ? ' (held out)' : ''} · ${curve.seeds} seeds${cut}`),
        lineChart({ series: series.slice().reverse(), xlabel: curve.steps ? 'environment steps' : 'checkpoint', ylabel: 'return', width: chartWidth(520), height: 240 }),
        legend(series)));
    }
    return parts.concat(grid);
  }

  // Programs in the order they were evaluated (seeds, on no island, belong to every island).
  function evaluated(c) {
    return programsOf(c).filter((p) => p.score !== null && p.eval_seq !== null).sort((a, b) => a.eval_seq - b.eval_seq);
  }
  const islandClass = (i) => (i === null ? 'seed-dot' : `o${i % 4}`);

  // Every scored program by when it was evaluated (OpenEvolve's view); a dot opens the program.
  function scatterChart(c) {
    const dots = evaluated(c).map((p) => ({ x: p.eval_seq, y: p.score, cls: islandClass(p.island), href: `#program/${p.id}`,
      label: `#${p.id} · ${fmt(p.score)} · ${p.island === null ? 'seed' : `island ${p.island}`} · ${p.operator}` }));
    return el('figure', { id: 'scatter' }, el('figcaption', {}, 'score of every program, by evaluation (colour: island)'),
      lineChart({ series: [], dots, xlabel: 'evaluation', ylabel: 'score', width: chartWidth(520), height: 230 }),
      legend([{ cls: 'seed-dot', label: 'seed' }].concat([...Array(c.grid.islands).keys()].map((i) => ({ cls: islandClass(i), label: `island ${i}` })))));
  }

  // The best score found so far on each island; seeds count on every island.
  function islandChart(c) {
    const series = [...Array(c.grid.islands).keys()].map((i) => {
      let best = null;
      const points = evaluated(c).filter((p) => p.island === null || p.island === i)
        .map((p) => { best = best === null ? p.score : Math.max(best, p.score); return [p.eval_seq, best]; });
      return { cls: islandClass(i), label: `island ${i}`, points };
    });
    return el('figure', { id: 'islands' }, el('figcaption', {}, 'best score per island'),
      lineChart({ series, xlabel: 'evaluation', ylabel: 'best score', width: chartWidth(520), height: 230 }), legend(series));
  }

  function progressView() {
    const c = campaign();
    const events = c.events;
    const migrations = c.events.filter((e) => e.kind === 'migration').map((e) => ({ x: e.evaluations, label: `migration after ${e.evaluations} evaluations` }));
    const last = c.events[c.events.length - 1];
    const chart = (key, label, opts = {}) => el('figure', {}, el('figcaption', {}, label),
      lineChart({ series: [{ cls: 'this', label, points: events.map((e) => [e.evaluations, e[key]]) }], xlabel: 'evaluations', ylabel: opts.ylabel || label,
        vlines: migrations, width: chartWidth(520), height: 230, yPercent: opts.percent }));
    const counts = Object.entries(c.counts).map(([k, v]) => `${k} ${v}`).join(', ');
    return [summary(c),
      el('p', { class: 'muted', id: 'outcomes' }, `outcomes: ${counts || '–'} · `,
        // duplicates are an outcome: name their count once
        c.duplicates && !('duplicate' in c.counts) ? `${c.duplicates} duplicates · ` : '',
        last && last.evals_per_hour ? `${fmt(last.evals_per_hour, 0)} evaluations/hour · ` : '', `last event ${last ? last.time.replace('T', ' ').slice(0, 19) : '–'}`,
        migrations.length ? ' · dashed lines: migrations' : ''),
      el('div', { class: 'charts' }, chart('best', 'best score'), chart('qd_score', 'QD score'), chart('coverage', 'coverage', { percent: true, ylabel: 'cells filled' }),
        scatterChart(c), islandChart(c))];
  }

  // -- routing ---------------------------------------------------------------------------------

  function route() {
    const [name, arg] = location.hash.replace(/^#/, '').split('/');
    return { name: name || 'heatmap', id: arg ? Number(arg) : null }; // "#program/abc" names no program: NaN
  }

  function render() {
    const r = route();
    let content;
    if (!DATA.campaigns.length) content = [el('p', {}, 'This archive holds no campaign yet.')];
    else if (r.name === 'program' || r.name === 'lineage' || r.name === 'curves') {
      const p = pickProgram(r.id);
      content = !p ? [el('p', { id: 'not-found' }, r.id !== null ? `Program #${r.id} not found in this archive.` : 'No programs yet.')] : r.name === 'program' ? programView(p) : r.name === 'lineage' ? lineageView(p) : curvesView(p);
    } else if (r.name === 'programs') content = programsView();
    else if (r.name === 'progress') content = progressView();
    else content = heatmapView();
    const focused = document.activeElement && view.contains(document.activeElement) ? document.activeElement : null;
    const caret = focused && focused.id && 'selectionStart' in focused ? [focused.id, focused.selectionStart] : null;
    view.replaceChildren(...content);
    restoreFocus(caret);
    document.getElementById('campaign').value = String(campaignId);
    updateNav(r);
  }

  // A re-render (typing in the search, a live refresh) replaces the controls: give the focus and caret back.
  function restoreFocus(caret) {
    const input = caret && document.getElementById(caret[0]);
    if (!input) return;
    input.focus();
    try { input.setSelectionRange(caret[1], caret[1]); } catch (e) { /* not a text field */ }
  }

  document.getElementById('campaign').addEventListener('change', (e) => { campaignId = Number(e.target.value); render(); });
  window.addEventListener('hashchange', () => { render(); window.scrollTo(0, 0); });

  // -- live refresh (served pages only) --------------------------------------------------------

  function showLive(text, on) {
    const live = document.getElementById('live');
    live.textContent = text;
    live.className = on ? 'on' : 'off';
  }

  // What the page holds, so the server sends only what it lacks: a program changes when it is
  // proposed (a new id) and when its result is recorded (its campaign's next eval_seq).
  function held() {
    const since = { program_id: 0, eval_seqs: {}, event_ids: {}, created: {} };
    for (const p of DATA.programs) {
      since.program_id = Math.max(since.program_id, p.id);
      since.eval_seqs[p.campaign_id] = Math.max(since.eval_seqs[p.campaign_id] || 0, p.eval_seq || 0);
    }
    for (const c of DATA.campaigns) {
      since.created[c.id] = c.created;
      since.event_ids[c.id] = c.events.reduce((m, e) => Math.max(m, e.id || 0), 0);
    }
    return since;
  }

  // A delta replaces the programs it carries, adds the new ones and the new events, and brings every
  // campaign's summary; an answer marked delta: false is the whole archive (another file now).
  function merge(data) {
    if (!data.delta) return data;
    const programs = new Map(DATA.programs.map((p) => [p.id, p]));
    for (const p of data.programs) programs.set(p.id, p);
    const eventsBefore = new Map(DATA.campaigns.map((c) => [c.id, c.events]));
    const campaigns = data.campaigns.map((c) => Object.assign(c, { events: (eventsBefore.get(c.id) || []).concat(c.events) }));
    return Object.assign(data, {
      programs: [...programs.values()].sort((a, b) => a.id - b.id),
      curves: Object.assign({}, DATA.curves, data.curves),
      campaigns,
    });
  }

  // Ask for the archive's version tag (always a 200) and download what changed only when it did.
  function poll() {
    fetch('version.json', { cache: 'no-store' })
      .then((res) => (res.ok ? res.json() : Promise.reject(new Error(res.statusText))))
      .then((tag) => (tag.version === DATA.version ? null
        : fetch(`data.json?since=${encodeURIComponent(JSON.stringify(held()))}`, { cache: 'no-store' }).then((res) => (res.ok ? res.json() : null))))
      .then((data) => {
        showLive(`live · checked ${new Date().toLocaleTimeString()}`, true);
        if (!data || data.version === DATA.version) return;
        const y = window.scrollY;
        DATA = merge(data);
        reindex();
        render();
        window.scrollTo(0, y);
      })
      .catch(() => showLive('server not reachable', false));
  }

  reindex();
  render();
  if (DATA.live) { poll(); setInterval(poll, 3000); }
})();
