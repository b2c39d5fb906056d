"""The archive as a web page: a static report (``write_report``) and a live local server (``serve``).

Everything the page needs ships in this package (``assets/``): it must open from ``file://``
on a machine with no network, and archive text is untrusted (programs may have been written by
a language model), so the data travels as escaped JSON and the page inserts it as text only.
"""

from __future__ import annotations

from evosearch.report.data import build_data, data_version, to_json
from evosearch.report.site import render_page, write_report

__all__ = ["build_data", "data_version", "render_page", "to_json", "write_report"]
