"""The report in a real browser (Debian's headless Chromium driven by Playwright): clicks, code, diffs, escaping.

Run with ``.venv/bin/python -m pytest -m browser tests/report``; skipped where Chromium or
Playwright is not installed (``apt-get install chromium``, ``pip install -e .[browser]``).
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("no Chromium at /usr/bin/chromium (Debian: apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")

from report_helpers import HOSTILE, HOSTILE_NOTE, copy_db  # noqa: E402 (after the skips above)

from evosearch.archive.store import Archive  # noqa: E402
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
            assert page.locator("svg.chart polyline").count() == 3
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
    db = copy_db(hostile[0], tmp_path / "live.db")
    server = make_server(db, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
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
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
