"""Old import path of report and serve, kept while tests/report/test_report.py imports it: use evosearch.cli.report."""

from evosearch.cli.report import report_command, serve_command

__all__ = ["report_command", "serve_command"]
