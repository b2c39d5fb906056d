"""Render the web report of an archive and save PNG screenshots of its views (for docs/campaign.md).

    .venv/bin/python scripts/screenshots.py /tmp/fresh/archive/quickstart.db --out docs/img

The archive is copied first (opening an archive may migrate it; the original stays untouched).
Needs Playwright and a Chromium (Debian: ``apt-get install chromium``). Fails on any JavaScript
error in the page, so a broken view cannot end up in the docs unnoticed.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evosearch.report.site import write_report  # noqa: E402 (after the path set-up above)


def copy_archive(db: Path, dest: Path) -> Path:
    """A consistent copy through SQLite's backup API (a plain copy could miss pages still in the WAL)."""
    source = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    target = sqlite3.connect(dest)
    source.backup(target)
    target.close()
    source.close()
    return dest


def best_with_parent(db: Path) -> int:
    """The best program that has a parent (so the diff and lineage views have something to show)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    row = conn.execute("SELECT id FROM programs WHERE score IS NOT NULL AND parent_id IS NOT NULL "
                       "ORDER BY score DESC LIMIT 1").fetchone() or conn.execute(
        "SELECT id FROM programs ORDER BY id LIMIT 1").fetchone()
    conn.close()
    if row is None:
        raise SystemExit(f"{db} holds no programs")
    return int(row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("db", type=Path, nargs="?", default=Path("archive/quickstart.db"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--program", type=int, help="Program for the program, lineage and curves views "
                        "(default: the best one with a parent).")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--max-height", type=int, default=1300, help="Crop long pages to this height.")
    args = parser.parse_args()
    if not args.db.is_file():
        raise SystemExit(f"no archive database at {args.db}")

    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="evosearch-shots-") as tmp:
        db = copy_archive(args.db, Path(tmp) / args.db.name)
        program = args.program or best_with_parent(db)
        page_url = write_report(db, Path(tmp) / "report").resolve().as_uri()
        views = {"heatmap": "#heatmap", "program": f"#program/{program}", "lineage": f"#lineage/{program}",
                 "curves": f"#curves/{program}", "progress": "#progress", "programs": "#programs"}
        errors: list[str] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True)
            page = browser.new_page(viewport={"width": args.width, "height": 800}, device_scale_factor=1)
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            for name, fragment in views.items():
                page.goto(page_url + fragment)
                page.wait_for_selector("#view > *")
                height = page.evaluate("document.documentElement.scrollHeight")
                path = args.out / f"report-{name}.png"
                page.screenshot(path=str(path), full_page=True,
                                clip={"x": 0, "y": 0, "width": args.width, "height": min(height, args.max_height)})
                print(f"wrote {path}")
            browser.close()
        if errors:
            raise SystemExit("errors in the page:\n" + "\n".join(errors))


if __name__ == "__main__":
    main()
