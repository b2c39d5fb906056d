"""The report in a real browser (Debian's headless Chromium driven by Playwright): clicks, code, diffs, escaping.

Run with ``.venv/bin/python -m pytest -m browser tests/report``; skipped where Chromium or
Playwright is not installed (``apt-get install chromium``, ``pip install -e .[browser]``).
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("no Chromium at /usr/bin/chromium (Debian: apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")

from conftest import FailsAtOnce, campaign_config  # noqa: E402 (after the skips above)
from report_helpers import HOSTILE, HOSTILE_NOTE, copy_db, finished_result, stage_report_cases  # noqa: E402

from evosearch.archive.store import Archive, CellEntry  # noqa: E402
from evosearch.campaign import Campaign  # noqa: E402
from evosearch.report.server import make_server  # noqa: E402
from evosearch.report.site import write_report  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def report_url(hostile, tmp_path_factory) -> str:
    return write_report(hostile[0], tmp_path_factory.mktemp("browser") / "report").resolve().as_uri()


class Watched:
    """A page plus everything that must not happen on it: dialogs (alert), JavaScript errors, CSP violations."""

    def __init__(self, page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda err: self.errors.append(str(err)))
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)

    def check(self) -> None:
        assert self.dialogs == [], f"a dialog opened: {self.dialogs}"
        assert self.errors == [], f"errors in the page: {self.errors}"


@pytest.fixture
def watched(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = Watched(context.new_page())
    yield page
    context.close()
    page.check()


@contextlib.contextmanager
def serving(source: Path, copy: Path) -> Iterator[tuple[Path, Any]]:
    """A copy of the archive ``source`` at ``copy``, served live on a free port until the block ends."""
    db = copy_db(source, copy)
    server = make_server(db, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield db, server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def source_of(db: Path, program_id: int) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT source FROM programs WHERE id = ?", (program_id,)).fetchone()[0]
    finally:
        conn.close()


def test_click_a_heatmap_cell_to_see_its_code_and_diff(watched, report_url, hostile):
    db, hostile_id = hostile
    page = watched.page
    page.goto(report_url)
    cell = page.locator(f'a.cell[data-program="{hostile_id}"]')
    cell.click()
    page.wait_for_url(f"**#program/{hostile_id}")
    code = page.locator("#code")
    assert code.is_visible()
    assert code.evaluate("e => e.textContent") == source_of(db, hostile_id)
    # The hostile comment is on the page as text, in the code and as the one added line of the diff.
    assert page.get_by_text(HOSTILE).first.is_visible()
    added = page.locator("#diff tr.add td.src")
    assert added.count() == 1 and added.first.text_content() == f"# {HOSTILE}"
    assert page.locator("#diff tr.del").count() == 0
    assert page.locator("p.note").evaluate("e => e.textContent") == HOSTILE_NOTE
    assert page.locator("#error").text_content() == HOSTILE
    # Nothing from the archive became markup: only our two scripts, no image, and no dialog (checked on teardown).
    assert page.evaluate("document.scripts.length") == 2
    assert page.locator("main img, main script").count() == 0


def test_programs_list_opens_a_child_with_its_diff(watched, report_url, hostile):
    db, hostile_id = hostile
    conn = sqlite3.connect(db)
    target = conn.execute("SELECT MIN(id) FROM programs WHERE parent_id IS NOT NULL AND id != ?",
                          (hostile_id,)).fetchone()[0]
    conn.close()
    page = watched.page
    page.goto(report_url + "#programs")
    page.locator(f'table.list td:first-child a[href="#program/{target}"]').click()
    page.wait_for_url(f"**#program/{target}")
    assert page.locator("#code").evaluate("e => e.textContent") == source_of(db, target)
    assert page.locator("#diff tr.add, #diff tr.del").count() >= 1


def test_every_view_renders_and_hash_links_work_from_file(watched, report_url, hostile):
    _, hostile_id = hostile
    page = watched.page
    for fragment, selector in ((f"#lineage/{hostile_id}", "#lineage .node.current"),
                               (f"#curves/{hostile_id}", "main h2"), ("#curves/1", "svg.chart polyline"),
                               ("#progress", "svg.chart"), ("#programs", "table.list tbody tr")):
        page.goto(report_url + fragment)
        assert page.locator(selector).first.is_visible(), fragment
        if fragment == "#progress":  # best, QD score, coverage (a flat line has no height, so is not "visible")
            assert page.locator("figure:not(#islands) svg.chart polyline").count() == 3
    page.goto(report_url + f"#lineage/{hostile_id}")
    assert page.locator("#lineage .node").count() >= 2  # the program and its seed parent
    page.locator("#lineage .node a").nth(1).click()
    assert "#program/" in page.url and page.locator("#code").is_visible()
    page.goto(report_url + "#heatmap")
    page.select_option("#island", "1")
    assert page.locator(f'a.cell[data-program="{hostile_id}"]').count() == 0  # it lives on island 0 only
    page.select_option("#island", "0")
    assert page.locator(f'a.cell[data-program="{hostile_id}"]').count() == 1


def test_line_diff_is_a_longest_common_subsequence(watched, report_url):
    page = watched.page
    page.goto(report_url)
    rng = random.Random(0)
    for _ in range(40):
        a = [rng.choice("abcde") for _ in range(rng.randrange(0, 12))]
        b = [rng.choice("abcde") for _ in range(rng.randrange(0, 12))]
        rows = page.evaluate("([a, b]) => window.evosearchDiff(a, b)", [a, b])
        assert [r["text"] for r in rows if r["op"] != "+"] == a
        assert [r["text"] for r in rows if r["op"] != "-"] == b
        assert sum(r["op"] == " " for r in rows) == _lcs(a, b)


def _lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    return table[0][0]


def test_served_page_refreshes_as_the_archive_grows(watched, hostile, tmp_path):
    with serving(hostile[0], tmp_path / "live.db") as (db, server):
        page = watched.page
        page.goto(f"{server.url}#programs")
        page.wait_for_selector("#live.on")
        archive = Archive(db)
        new_id = archive.add_pending(archive.campaigns()[0]["id"], {
            "kind": "rule", "source": "# arrived while the page was open\n", "sha": "live", "operator": "seed",
            "note": f"live {HOSTILE}"})
        archive.close()
        page.wait_for_selector(f'a[href="#program/{new_id}"]', timeout=15_000)  # polled every 3 s
        assert page.get_by_text(f"live {HOSTILE}").is_visible()


def test_a_live_refresh_downloads_only_what_changed(watched, hostile, tmp_path):
    with serving(hostile[0], tmp_path / "delta.db") as (db, server):
        page = watched.page
        downloads: list[tuple[str, int]] = []
        page.on("response", lambda r: downloads.append((r.url, len(r.body()))) if "/data.json" in r.url else None)
        page.goto(f"{server.url}#programs")
        page.wait_for_selector("#live.on")
        whole = len(sqlite3.connect(db).execute("SELECT group_concat(source) FROM programs").fetchone()[0])

        archive = Archive(db)
        cid = archive.campaigns()[0]["id"]
        new_id = archive.add_pending(cid, {"kind": "rule", "source": "# arrived while the page was open\n",
                                           "sha": "delta", "operator": "seed", "island": 0, "note": "delta one"})
        archive.close()
        page.wait_for_selector(f'a[href="#program/{new_id}"]', timeout=15_000)  # polled every 3 s

        archive = Archive(db)
        archive.record(cid, new_id, finished_result(77.0), descriptors={}, cells=[CellEntry(0, 0, [0, 0])],
                       state=json.loads(archive.campaigns()[0]["state"]))
        archive.close()
        page.goto(f"{server.url}#program/{new_id}")
        page.locator("#view").get_by_text("77.000").first.wait_for(timeout=15_000)
        page.goto(f"{server.url}#programs")
        assert page.locator('a[href^="#program/"]').count() > 3  # the programs it had are all still listed

        assert len(downloads) >= 2, downloads
        for url, size in downloads:
            assert "since=" in url, url  # never the whole archive again
            assert size < whole, (url, size, whole)  # smaller than the sources alone


# -- what the quickstart archive showed wrong (issue 16) ------------------------------------------------


@pytest.fixture(scope="module")
def staged(hostile, tmp_path_factory):
    """(report URL, database, hostile id, what stage_report_cases set up)."""
    db = copy_db(hostile[0], tmp_path_factory.mktemp("staged") / "staged.db")
    cases = stage_report_cases(db, hostile[1])
    url = write_report(db, tmp_path_factory.mktemp("staged-site") / "report").resolve().as_uri()
    return url, db, hostile[1], cases


def polyline_points(page, selector: str) -> list[int]:
    count = "els => els.map(e => e.getAttribute('points').trim().split(/\\s+/).length)"
    return page.locator(selector).evaluate_all(count)


def test_curves_show_every_seed_and_their_spread_without_the_partial_last_interval(watched, staged):
    url, _, _, cases = staged
    page = watched.page
    page.goto(url + f"#curves/{cases['curved']}")
    chart = page.locator("figure svg.chart").first
    # One thin line per seed and a min-max band: a seed that never learns is visible, not averaged away.
    assert chart.locator("polyline.seed.this").count() == cases["seeds"]
    assert chart.locator("polygon.band.this").count() == 1
    # The last checkpoint, 52 steps after the one before, is left out of the lines and said to be.
    assert polyline_points(page, "figure svg.chart polyline.line.this:not(.seed)")[0] == cases["checkpoints"]
    assert "left out" in page.locator("figure figcaption").first.text_content()
    page.uncheck("#seeds")
    assert page.locator("figure svg.chart polyline.seed").count() == 0


def test_curves_overlay_any_programs(watched, staged):
    url, db, hostile_id, cases = staged
    conn = sqlite3.connect(db)
    others = [i for (i,) in conn.execute("SELECT DISTINCT program_id FROM evaluations WHERE curve IS NOT NULL "
                                          "AND program_id != ? ORDER BY program_id DESC LIMIT 2", (cases["curved"],))]
    conn.close()
    page = watched.page
    page.goto(url + f"#curves/{cases['curved']}")
    page.fill("#compare", ", ".join(map(str, others)))
    page.press("#compare", "Enter")
    keys = page.locator("figure .legend .key").all_text_contents()
    assert all(any(k.endswith(f"#{i}") for k in keys) for i in others), keys
    assert page.locator("figure svg.chart").first.locator("polygon.band").count() == 1 + len(others)


def test_elite_table_and_tooltips_name_the_elites_island(watched, staged):
    url, _, hostile_id, _ = staged
    page = watched.page
    page.goto(url + "#heatmap")
    row = page.locator("table.elites tr", has=page.locator(f'a[href="#program/{hostile_id}"]'))
    assert row.locator("td").nth(3).text_content() == "0"  # island 1 fills the cell with another program
    title = page.locator(f'a.cell[data-program="{hostile_id}"] title').text_content()
    assert "island 0 ·" in title and "island 0, 1" not in title


def test_numbers_durations_and_axes_read_right(watched, staged):
    url, _, _, cases = staged
    page = watched.page
    for view in ("#heatmap", "#programs", "#progress", f"#program/{cases['curved']}", f"#curves/{cases['curved']}"):
        page.goto(url + view)
        assert not re.search(r"-0\.0+(?![0-9])", page.locator("main").inner_text()), view  # "-0.00", "-0.000"
    page.goto(url + f"#program/{cases['other']}")
    assert "0.2 s wall" in page.locator("dl.meta").inner_text()  # 0.198 s is not "0 s"
    page.goto(url + "#progress")
    outcomes = page.locator("#outcomes").text_content()
    assert "duplicate" in outcomes and "duplicates" not in outcomes  # the count is said once
    coverage = page.evaluate("Math.max(...JSON.parse(document.getElementById('data').textContent)"
                             ".campaigns[0].events.map(e => e.coverage))")
    labels = page.locator("figure").nth(2).locator("g.axes text[text-anchor=end]").all_text_contents()
    assert max(float(t.rstrip("%")) for t in labels) >= 100 * coverage  # the axis reaches the data


def test_top_bar_keeps_the_program_and_unknown_programs_are_not_found(watched, staged):
    url, _, _, cases = staged
    page = watched.page
    pid = cases["other"]
    page.goto(url + f"#program/{pid}")
    page.click("#nav a[data-view=curves]")
    assert page.url.endswith(f"#curves/{pid}") and page.locator("main h2").text_content().startswith(f"Program #{pid}")
    page.click("#nav a[data-view=lineage]")
    assert page.url.endswith(f"#lineage/{pid}")
    assert page.locator("#lineage .node.current").text_content().startswith(f"#{pid}")
    page.goto(url + "#program/9999")
    assert "#9999 not found" in page.locator("#not-found").text_content()
    assert page.locator("#code").count() == 0


def test_units_definitions_and_cells_by_bin_range(watched, staged):
    url, _, hostile_id, cases = staged
    page = watched.page
    page.goto(url + "#heatmap")
    defs = page.locator("#definitions").inner_text()
    assert "normalised return" in defs and "0 is random play" in defs
    assert "code_size" in defs and "AST nodes" in defs and "learning_speed" in defs and "area under" in defs
    assert page.locator(".scale").inner_text().startswith("score")
    title = page.locator(f'a.cell[data-program="{hostile_id}"] title').text_content()
    assert re.match(r"code_size [\d.]+–[\d.]+, learning_speed [\d.]+–[\d.]+ · program", title), title
    row = page.locator("table.elites tr", has=page.locator(f'a[href="#program/{hostile_id}"]'))
    assert re.fullmatch(r"code_size [\d.]+–[\d.]+, learning_speed [\d.]+–[\d.]+",
                        row.locator("td").nth(2).text_content())
    page.goto(url + f"#program/{cases['other']}")
    meta = page.locator("dl.meta").inner_text()
    assert "0.3 s CPU" in meta and "123 MB peak memory" in meta


def test_programs_table_sorts_by_any_column_and_searches(watched, staged):
    url, db, hostile_id, _ = staged
    conn = sqlite3.connect(db)
    ids = [i for (i,) in conn.execute("SELECT id FROM programs ORDER BY id")]
    conn.close()
    page = watched.page
    page.goto(url + "#programs")
    first_ids = "els => els.map(e => Number(e.textContent.slice(1)))"
    page.click("th button[data-sort=id]")
    assert page.locator("table.programs tbody td:first-child a").evaluate_all(first_ids) == ids
    page.click("th button[data-sort=id]")
    assert page.locator("table.programs tbody td:first-child a").evaluate_all(first_ids) == ids[::-1]
    page.click("th button[data-sort=operator]")
    operators = page.locator("table.programs tbody td:nth-child(4)").all_text_contents()
    assert operators == sorted(operators)
    page.type("#search", "llm")  # typed key by key: the table re-renders and the field keeps the focus
    assert page.input_value("#search") == "llm"
    assert page.locator("table.programs tbody td:first-child a").evaluate_all(first_ids) == [hostile_id]
    assert page.locator("#count").text_content() == f"1 of {len(ids)} programs"


def test_phone_width_never_scrolls_sideways_and_chart_labels_stay_readable(browser, staged):
    url, _, hostile_id, cases = staged
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = Watched(context.new_page())
    try:
        for view in ("#heatmap", "#programs", f"#program/{hostile_id}", f"#lineage/{hostile_id}",
                     f"#curves/{cases['curved']}", "#progress"):
            page.page.goto(url + view)
            assert page.page.evaluate("document.documentElement.scrollWidth") <= 390, view
            assert page.page.locator("#nav").evaluate("e => e.getBoundingClientRect().right") <= 390, view
        # Tick labels are drawn at 10-11 px; a chart scaled down to fit shows them smaller.
        sizes = page.page.locator("svg.chart g.axes text").evaluate_all(
            "els => els.map(e => e.getBoundingClientRect().height)")
        assert min(sizes) >= 9, sizes
    finally:
        context.close()
    page.check()


def test_unchanged_live_polls_are_not_failed_requests(watched, hostile, tmp_path):
    with serving(hostile[0], tmp_path / "quiet.db") as (db, server):
        page = watched.page
        seen: list[tuple[str, int]] = []
        page.on("response", lambda r: seen.append((r.url.rsplit("/", 1)[-1], r.status)))
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto(f"{server.url}#progress")
        page.wait_for_selector("#live.on")
        page.wait_for_timeout(7_000)  # two more polls of an archive that does not change
        polls = [(name, status) for name, status in seen if name.endswith(".json")]
        assert len(polls) >= 3 and all(status == 200 for _, status in polls), polls
        assert not any(name == "data.json" for name, _ in polls), polls  # nothing changed: nothing re-downloaded
        assert failed == []


def test_progress_shows_every_program_and_each_islands_best(watched, staged):
    url, db, _, _ = staged
    conn = sqlite3.connect(db)
    scored = conn.execute("SELECT COUNT(*) FROM programs WHERE score IS NOT NULL AND eval_seq IS NOT NULL")\
        .fetchone()[0]
    islands = json.loads(conn.execute("SELECT config FROM campaigns").fetchone()[0])["archive"]["islands"]
    best = conn.execute("SELECT id FROM programs WHERE score IS NOT NULL AND eval_seq IS NOT NULL "
                        "ORDER BY score DESC, id LIMIT 1").fetchone()[0]
    conn.close()
    page = watched.page
    page.goto(url + "#progress")
    assert page.locator("#scatter a.dot-link circle").count() == scored
    assert page.locator("#islands polyline, #islands circle").count() == islands
    page.locator(f'#scatter a.dot-link[href="#program/{best}"]').click()
    assert page.url.endswith(f"#program/{best}")


def test_diff_against_any_program(watched, staged):
    url, db, hostile_id, cases = staged
    page = watched.page
    page.goto(url + f"#program/{hostile_id}")
    page.fill("#against", str(cases["other"]))
    page.press("#against", "Enter")
    assert page.locator("main h3").nth(1).text_content().startswith(f"Change from #{cases['other']}")
    rows = page.locator("#diff tr.add, #diff tr.del").count()
    assert rows > 1  # more than the one comment line that separates it from its parent
    page.fill("#against", "")
    page.press("#against", "Enter")
    assert page.locator("#diff tr.add").count() == 1 and page.locator("#diff tr.del").count() == 0


def test_lineage_of_a_gp_new_child_reaches_the_seed_it_mutated(watched, tmp_path):
    """``gp.new`` mutating the a2c genome ("seed a2c mutated by ..."): its lineage leads to the seed a2c.py."""
    db = tmp_path / "gp.db"
    campaign = Campaign(campaign_config(parallel=1, operators={"enabled": ["gp.new"], "gp_seed_genomes": ["a2c"]}),
                        db_path=db, evaluator=FailsAtOnce())
    campaign.run(max_evals=20)
    campaign.close()
    conn = sqlite3.connect(db)
    seed = conn.execute("SELECT id FROM programs WHERE note = 'seed a2c.py'").fetchone()[0]
    child = conn.execute("SELECT id FROM programs WHERE note LIKE 'seed a2c mutated by%' ORDER BY id").fetchone()
    conn.close()
    assert child is not None, "the campaign made no gp.new child of the a2c genome"
    url = write_report(db, tmp_path / "report").resolve().as_uri()
    page = watched.page
    page.goto(f"{url}#lineage/{child[0]}")
    tree = page.locator("#lineage")
    tree.wait_for()
    assert tree.locator(f'a[href="#program/{seed}"]').count() == 1, tree.inner_text()
    assert "seed a2c.py" in tree.inner_text()


def test_a_confirmed_program_shows_both_scores(watched, hostile, tmp_path):
    db = copy_db(hostile[0], tmp_path / "confirmed.db")
    conn = sqlite3.connect(db)
    program_id = conn.execute("SELECT id FROM programs WHERE outcome = 'ok' ORDER BY id LIMIT 1").fetchone()[0]
    conn.execute("UPDATE programs SET metrics = json_set(metrics, '$.confirmed', json(?)) WHERE id = ?",
                 (json.dumps({"outcome": "ok", "score": 0.25, "ci": [0.1, 0.4], "seeds": 12, "first_seed": 1000}),
                  program_id))
    conn.commit()
    conn.close()
    url = write_report(db, tmp_path / "report").resolve().as_uri()
    page = watched.page
    page.goto(f"{url}#program/{program_id}")
    meta = page.locator("dl.meta")
    meta.wait_for()
    assert "0.250 [0.10, 0.40] on 12 fresh seeds (search score minus confirmed:" in meta.inner_text()
