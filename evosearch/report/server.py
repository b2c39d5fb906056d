"""``evosearch serve``: the report's page, live, from a local HTTP server that reads the archive per request.

A campaign keeps writing while someone watches, so the page polls ``/version.json`` (a cheap tag
that changes with the archive) and, only when the tag has changed, fetches
``/data.json?since=...`` with what it already holds: the answer carries only the programs, curves
and events it lacks, so a page watching a 10,000-program campaign downloads one new program's
worth per change, not the archive. Plain ``/data.json`` is the whole data (and answers
``If-None-Match`` with ``304 Not Modified``).

The server binds 127.0.0.1 by default: an archive holds code and results that should
not be served to the network by accident. Bound to loopback it also answers only requests whose
``Host`` is a loopback name, so a web page cannot read the archive through DNS rebinding.
"""

from __future__ import annotations

import json
import socket
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from evosearch.archive.store import Archive
from evosearch.loopback import host_header_is_loopback, is_loopback
from evosearch.report.data import Held, build_data, data_version, to_json
from evosearch.report.site import asset_files, render_page

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}



class ReportServer(ThreadingHTTPServer):
    """One archive, served read-only; each request opens its own connection (SQLite connections are per thread)."""

    daemon_threads = True

    def __init__(self, db_path: Path, host: str, port: int) -> None:
        self.db_path = Path(db_path)
        self.assets = asset_files()
        self.loopback = is_loopback(host)
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), ReportHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in str(host) else host}:{port}/"

    def open_archive(self) -> Archive:
        return Archive(self.db_path)


class ReportHandler(BaseHTTPRequestHandler):
    server: ReportServer
    server_version = "evosearch"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.server.loopback and not self._host_allowed():
            self._send(HTTPStatus.FORBIDDEN, b"forbidden: this server answers only to localhost\n", "text/plain")
            return
        url = urlsplit(self.path)
        path = url.path
        if path in ("/", "/index.html"):
            archive = self.server.open_archive()
            try:
                body = render_page(build_data(archive, live=True)).encode()
            finally:
                archive.close()
            self._send(HTTPStatus.OK, body, "text/html; charset=utf-8")
        elif path == "/data.json":
            since = parse_qs(url.query).get("since")
            self._delta(since[0]) if since else self._data()
        elif path == "/version.json":
            self._version()
        elif path.startswith("/assets/") and path[len("/assets/"):] in self.server.assets:
            name = path[len("/assets/"):]
            self._send(HTTPStatus.OK, self.server.assets[name], _TYPES[Path(name).suffix])
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def _data(self) -> None:
        archive = self.server.open_archive()
        try:
            tag = f'"{data_version(archive)}"'
            if self.headers.get("If-None-Match") == tag:
                self._send(HTTPStatus.NOT_MODIFIED, b"", None, etag=tag)
                return
            body = to_json(build_data(archive, live=True)).encode()
        finally:
            archive.close()
        self._send(HTTPStatus.OK, body, "application/json", etag=tag)

    def _delta(self, since: str) -> None:
        """What a page lacks, given what it says it holds (see :class:`Held`); 400 for a malformed ``since``."""
        try:
            held = Held.parse(since)
        except ValueError as exc:
            self._send(HTTPStatus.BAD_REQUEST, f"bad request: {exc}\n".encode(), "text/plain")
            return
        archive = self.server.open_archive()
        try:
            body = to_json(build_data(archive, live=True, held=held)).encode()
        finally:
            archive.close()
        self._send(HTTPStatus.OK, body, "application/json")

    def _version(self) -> None:
        """The archive's version tag alone, always 200: the page polls this and fetches data.json only on a change.

        Polling data.json with If-None-Match answers 304 when nothing changed, which browsers list
        as a failed request every few seconds; this keeps an unchanged poll an ordinary success.
        """
        archive = self.server.open_archive()
        try:
            body = json.dumps({"version": data_version(archive)}).encode()
        finally:
            archive.close()
        self._send(HTTPStatus.OK, body, "application/json")

    def _host_allowed(self) -> bool:
        return host_header_is_loopback(self.headers.get("Host", ""))

    def _send(self, status: HTTPStatus, body: bytes, content_type: str | None, etag: str | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's signature)
        """Quiet: one line per poll every few seconds would bury everything else on the terminal."""


def make_server(db_path: str | Path, host: str = "127.0.0.1", port: int = 8000) -> ReportServer:
    """A server for the archive at ``db_path``, bound but not yet serving (port 0 picks a free port)."""
    path = Path(db_path)
    if not path.is_file():  # Archive() would create an empty database there
        raise FileNotFoundError(f"no archive database at {path}")
    return ReportServer(path, host, port)


def serve(db_path: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the archive's page until Ctrl-C; the page refreshes itself as the campaign writes."""
    server = make_server(db_path, host, port)
    if not server.loopback:
        print(f"warning: serving {db_path} on {host}, reachable from other machines; the archive's code and "
              "results are visible to anyone who can connect", file=sys.stderr)
    print(f"serving {db_path} at {server.url} (Ctrl-C to stop)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


__all__ = ["ReportServer", "is_loopback", "make_server", "serve"]
