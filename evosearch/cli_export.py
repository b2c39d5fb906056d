"""Old import path of ``evosearch export``, kept while tests/test_export.py imports it; use evosearch.cli.export."""

from evosearch.cli.export import export_command

__all__ = ["export_command"]
