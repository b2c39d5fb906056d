"""Browsing commands start fast: the CLI loads torch only for commands that train or play."""

import subprocess
import sys


def test_the_cli_and_its_browsing_commands_do_not_import_torch():
    code = ("import sys; from evosearch.cli import main; import evosearch.browse, evosearch.export, "
            "evosearch.report.data; print(sorted(m for m in ('torch', 'envpool', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
