"""The web report without a browser: files, data, escaping of hostile archive text, the live server, the CLI."""

from __future__ import annotations

import http.client
import json
import math
import re
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from report_helpers import HOSTILE, HOSTILE_NOTE, copy_db, finished_result, stage_report_cases

from evosearch.archive.store import Archive, CellEntry
from evosearch.cli.report import report_command, serve_command
from evosearch.report.data import Held, build_data, to_json
from evosearch.report.server import make_server
from evosearch.report.site import embed_json, write_report

DATA_OPEN = '<script type="application/json" id="data">'


def embedded(page: str) -> dict:
    """The JSON the page carries, cut out the way an HTML parser would: up to the first ``</script``."""
    start = page.index(DATA_OPEN) + len(DATA_OPEN)
    return json.loads(page[start:page.index("</script", start)])


@pytest.fixture(scope="module")
def site(hostile, tmp_path_factory) -> Path:
    return write_report(hostile[0], tmp_path_factory.mktemp("site") / "report").parent


def test_report_writes_the_page_and_its_assets(site, hostile):
    assert sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()) == [
        "assets/app.js", "assets/style.css", "index.html"]
    page = (site / "index.html").read_text(encoding="utf-8")
    # The only things the page loads are its own two assets, by relative path (the empty icon stops a favicon fetch).
    assert re.findall(r'(?:src|href)="([^"#]*)"', page) == ["data:,", "assets/style.css", "assets/app.js"]
    data = embedded(page)
    conn = sqlite3.connect(hostile[0])
    assert len(data["programs"]) == conn.execute("SELECT COUNT(*) FROM programs").fetchone()[0]
    [campaign] = data["campaigns"]
    config = json.loads(conn.execute("SELECT config FROM campaigns").fetchone()[0])
    assert [a["bins"] for a in campaign["grid"]["axes"]] == [d["bins"] for d in config["archive"]["descriptors"]]
    assert len(campaign["cells"]) == conn.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    assert len(campaign["events"]) == conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert campaign["best_program"] == hostile[1]
    assert data["live"] is False and "base_url" not in page  # LLM endpoints stay out of a shareable report


def test_learning_curves_are_the_mean_over_seeds(site, hostile):
    data = embedded((site / "index.html").read_text(encoding="utf-8"))
    conn = sqlite3.connect(hostile[0])
    program_id, task = conn.execute("SELECT program_id, task FROM evaluations WHERE curve IS NOT NULL").fetchone()
    curves = [json.loads(c) for (c,) in conn.execute(
        "SELECT curve FROM evaluations WHERE program_id = ? AND task = ? ORDER BY seed", (program_id, task))]
    [shown] = [c for c in data["curves"][str(program_id)] if c["task"] == task]
    assert shown["seeds"] == len(curves) >= 2
    length = min(len(c) for c in curves)
    assert shown["mean"][:length] == pytest.approx([sum(c[i] for c in curves) / len(curves) for i in range(length)],
                                                    abs=1e-3)
    assert shown["steps"] is None or len(shown["steps"]) == len(shown["mean"])


def test_a_partial_last_interval_is_left_out_of_the_curves_not_the_archive(hostile, tmp_path):
    db = copy_db(hostile[0], tmp_path / "staged.db")
    cases = stage_report_cases(db, hostile[1])
    archive = Archive(db)
    try:
        [curve] = [c for c in build_data(archive)["curves"][str(cases["curved"])] if c["task"] == cases["task"]]
    finally:
        archive.close()
    assert len(curve["mean"]) == len(curve["steps"]) == cases["checkpoints"]
    assert [len(r) for r in curve["runs"]] == [cases["checkpoints"]] * cases["seeds"]
    assert curve["trimmed_step"] == curve["steps"][-1] + 52 and 500.0 not in curve["mean"]
    conn = sqlite3.connect(db)
    stored = [json.loads(c) for (c,) in conn.execute("SELECT curve FROM evaluations WHERE program_id = ?",
                                                      (cases["curved"],))]
    conn.close()
    assert all(len(c) == cases["checkpoints"] + 1 for c in stored)  # the archive keeps every checkpoint


def test_no_file_points_at_another_host(site):
    for path in site.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"(?i)https?://", text), path


def test_hostile_text_stays_inside_the_json(site, hostile):
    page = (site / "index.html").read_text(encoding="utf-8")
    assert HOSTILE not in page and "<img" not in page and "\u2028" not in page
    assert page.count("<script") == 2 and page.count("</script") == 2  # ours only: the data and app.js
    data = embedded(page)
    [program] = [p for p in data["programs"] if p["id"] == hostile[1]]
    assert f"# {HOSTILE}\n" in program["source"]
    assert program["note"] == HOSTILE_NOTE and program["model"] == HOSTILE and program["error"] == HOSTILE
    conn = sqlite3.connect(hostile[0])
    assert program["source"] == conn.execute("SELECT source FROM programs WHERE id = ?", (hostile[1],)).fetchone()[0]


@pytest.mark.parametrize("text", [HOSTILE, HOSTILE_NOTE, "<!--<script>", "a\u2029b", "&lt;", "\\u003c", "é ☃ \x00"])
def test_embedded_json_reads_back_exactly(text):
    escaped = embed_json(json.dumps({"s": text}))
    assert not set(escaped) & set("<>&\u2028\u2029") and json.loads(escaped) == {"s": text}


def test_json_is_strict():
    assert json.loads(to_json({"a": math.nan, "b": [math.inf, 1.5]})) == {"a": None, "b": [None, 1.5]}


def _get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers or {})
    res = conn.getresponse()
    body = res.read()
    conn.close()
    return res.status, dict(res.getheaders()), body


def test_server_serves_the_page_and_live_data(hostile, tmp_path):
    db = copy_db(hostile[0], tmp_path / "live.db")
    server = make_server(db, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        status, headers, body = _get(port, "/")
        page = body.decode()
        assert status == 200 and headers["Content-Type"].startswith("text/html") and HOSTILE not in page
        assert embedded(page)["live"] is True
        status, headers, body = _get(port, "/data.json")
        assert status == 200 and headers["Content-Type"] == "application/json"
        before = json.loads(body)
        etag = headers["ETag"]
        assert _get(port, "/data.json", {"If-None-Match": etag})[0] == 304  # unchanged: nothing rebuilt
        status, _, body = _get(port, "/version.json")  # what the page polls: always 200, the tag alone
        assert status == 200 and f'"{json.loads(body)["version"]}"' == etag

        archive = Archive(db)  # a campaign writing while the page is open
        campaign = archive.campaigns()[0]["id"]
        new_id = archive.add_pending(campaign, {"kind": "rule", "source": "# added later\n", "sha": "later",
                                                "operator": "seed", "note": "added after the server started"})
        archive.close()
        status, headers, body = _get(port, "/data.json", {"If-None-Match": etag})
        after = json.loads(body)
        assert status == 200 and headers["ETag"] != etag
        assert len(after["programs"]) == len(before["programs"]) + 1
        assert after["programs"][-1]["id"] == new_id and after["programs"][-1]["status"] == "pending"
        assert "added after the server started" in _get(port, "/")[2].decode()

        status, headers, body = _get(port, "/assets/app.js")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript") and b"textContent" in body
        assert _get(port, "/assets/../site.py")[0] == 404 and _get(port, "/db")[0] == 404
        # A page on another origin that rebinds its name to 127.0.0.1 must not read the archive.
        assert _get(port, "/data.json", {"Host": "attacker.example:80"})[0] == 403
        assert _get(port, "/", {"Host": f"localhost:{port}"})[0] == 200
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def merged(old: dict, delta: dict) -> dict:
    """What the page's script makes of a delta (app.js ``merge``), written again in Python."""
    if not delta["delta"]:
        return delta
    programs = {p["id"]: p for p in old["programs"]} | {p["id"]: p for p in delta["programs"]}
    events = {c["id"]: c["events"] for c in old["campaigns"]}
    campaigns = [{**c, "events": events.get(c["id"], []) + c["events"]} for c in delta["campaigns"]]
    return {**delta, "programs": sorted(programs.values(), key=lambda p: p["id"]),
            "curves": {**old["curves"], **delta["curves"]}, "campaigns": campaigns}


def test_a_live_refresh_sends_only_what_changed_and_adds_up_to_the_whole(hostile, tmp_path):
    db = copy_db(hostile[0], tmp_path / "delta.db")
    archive = Archive(db)
    try:
        before = build_data(archive, live=True)
        cid = before["campaigns"][0]["id"]
        held = Held.parse(Held.of(before).to_json())  # the page sends it as JSON

        finished = archive.add_pending(cid, {"kind": "rule", "source": "# proposed, then evaluated\n",
                                             "sha": "d1", "operator": "seed", "island": 0})
        pending = archive.add_pending(cid, {"kind": "rule", "source": "# still pending\n", "sha": "d2",
                                            "operator": "seed", "island": 0})
        state = json.loads(archive.campaigns()[0]["state"])
        archive.record(cid, finished, finished_result(99.0), descriptors={}, state=state,
                       cells=[CellEntry(island=0, cell=0, coords=[0, 0])])
        archive.add_event(cid, "progress", 42, {"best": 99.0, "qd_score": 1.0, "coverage": 0.5}, 100.0)

        delta = build_data(archive, live=True, held=held)
        after = build_data(archive, live=True)
    finally:
        archive.close()

    assert delta["delta"] is True
    assert [p["id"] for p in delta["programs"]] == [finished, pending]  # nothing the page already had
    assert list(delta["curves"]) == [str(finished)]
    assert [e["evaluations"] for e in delta["campaigns"][0]["events"]] == [42]
    # Its size grows with what changed, not with the archive: none of the programs already held are in it.
    assert len(to_json(delta)) < len(to_json(after)) - len(to_json(before["programs"]))
    drop = lambda d: {k: v for k, v in d.items() if k not in ("generated", "delta")}  # noqa: E731
    assert drop(merged(before, delta)) == drop(after)  # the page ends up with exactly the whole archive

    # Nothing changed since: an empty delta. A page from another archive file: the whole data.
    again = Held.of(after)
    archive = Archive(db)
    try:
        assert build_data(archive, held=again)["programs"] == []
        stranger = Held(program_id=again.program_id, created={cid: "1999-01-01T00:00:00"})
        whole = build_data(archive, held=stranger)
        future = build_data(archive, held=Held(program_id=again.program_id + 5))
    finally:
        archive.close()
    assert whole["delta"] is False and len(whole["programs"]) == len(after["programs"])
    assert future["delta"] is False


@pytest.mark.parametrize("since", ["not json", "[1]", '{"program_id": -1}', '{"eval_seqs": {"x": 1}}',
                                   '{"created": {"1": 5}}', '{"program_id": true}'])
def test_a_malformed_since_is_a_bad_request(hostile, tmp_path, since):
    server = make_server(hostile[0], port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        from urllib.parse import quote
        status, _, body = _get(server.server_address[1], f"/data.json?since={quote(since)}")
        assert status == 400 and body.startswith(b"bad request: since"), body
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_server_binds_loopback_by_default(hostile):
    server = make_server(hostile[0], port=0)
    try:
        assert server.server_address[0] == "127.0.0.1" and server.loopback
    finally:
        server.server_close()


def test_data_of_an_empty_archive(tmp_path):
    archive = Archive(tmp_path / "empty.db")
    try:
        data = build_data(archive)
    finally:
        archive.close()
    assert data["campaigns"] == [] and data["programs"] == [] and json.loads(to_json(data))


def test_cli_report_and_its_errors(hostile, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(report_command, [str(hostile[0]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "index.html").is_file() and "file://" in result.output

    missing = runner.invoke(report_command, [str(tmp_path / "nope.db"), "-o", str(out)])
    assert missing.exit_code == 2 and "no archive database at" in missing.output
    assert not (tmp_path / "nope.db").exists()  # not created by the attempt
    (tmp_path / "file").write_text("x")
    clash = runner.invoke(report_command, [str(hostile[0]), "-o", str(tmp_path / "file")])
    assert clash.exit_code == 2
    (tmp_path / "junk.db").write_text("not sqlite at all, just text " * 100)
    junk = runner.invoke(report_command, [str(tmp_path / "junk.db")])
    assert junk.exit_code == 2 and "an evosearch archive" in junk.output  # "is not" or "cannot open as"

    missing = runner.invoke(serve_command, [str(tmp_path / "nope.db")])
    assert missing.exit_code == 2 and "no archive database at" in missing.output
