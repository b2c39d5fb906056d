"""The conventions every command shares (evosearch.cli.options), and --help for every command."""

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from evosearch.cli import main
from evosearch.cli.options import db_option, device_option, output_options
from evosearch.devices import DEVICE_PATTERN

CLI_DIR = Path(__file__).resolve().parents[2] / "evosearch" / "cli"
LISTINGS = {  # every command that lists or shows something, with the formats it offers
    "status": {"json", "csv"}, "suite list": {"json", "csv"}, "suite show": {"json", "csv"},
    "archive ls": {"json", "csv"}, "archive best": {"json", "csv"}, "archive show": {"json"},
    "archive diff": {"json", "csv"}, "archive lineage": {"json", "csv"}, "archive stats": {"json", "csv"},
    "archive heatmap": {"json", "csv"}, "eval": {"json"}, "doctor": {"json"},
}
READS_AN_ARCHIVE = ("status", "archive ls", "archive best", "archive show", "archive diff", "archive lineage",
                    "archive stats", "archive heatmap", "report", "serve", "export")


def commands(group: click.Group = main, path: tuple[str, ...] = ()):
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from commands(command, (*path, name))


def command(path: str) -> click.Command:
    return dict((" ".join(p), c) for p, c in commands())[path]


@pytest.mark.parametrize("path", [p for p, _ in commands()], ids=lambda p: " ".join(p) or "evosearch")
def test_help_is_plain_text(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    for markup in ("``", ":func:", ":class:", ":mod:", ":meth:"):
        assert markup not in result.output, (path, markup)


def test_output_flags_are_declared_only_by_output_options():
    for path in CLI_DIR.glob("*.py"):
        if path.name != "options.py":
            text = path.read_text()
            assert '"--json"' not in text and '"--csv"' not in text and '"--table"' not in text, path
    for path, cmd in commands():
        for param in cmd.params:
            if {"--json", "--csv", "--table"} & set(param.opts):
                assert param.name.startswith("output_"), (path, param.opts)


@pytest.mark.parametrize("path", sorted(LISTINGS))
def test_every_listing_offers_its_formats_in_help(path):
    result = CliRunner().invoke(main, [*path.split(), "--help"])
    shown = {name for name in ("table", "json", "csv") if f"--{name} " in result.output}
    assert shown == {"table"} | LISTINGS[path]


@pytest.mark.parametrize("path", READS_AN_ARCHIVE)
def test_every_command_that_reads_an_archive_takes_db(path):
    assert any(param.opts == ["--db"] for param in command(path).params)


def test_eval_and_run_share_the_device_option():
    eval_device, run_device = ([p for p in command(name).params if p.name == "device"][0] for name in ("eval", "run"))
    assert type(eval_device.type) is type(run_device.type)
    for value in ("auto", "cpu", "cuda", "cuda:0", "cuda:12", "gpu", "cuda:", "CPU", "cuda:x", "mps"):
        try:
            eval_device.type.convert(value, eval_device, None)
            accepted = True
        except click.BadParameter:
            accepted = False
        assert accepted == bool(DEVICE_PATTERN.match(value)), value


@click.command()
@db_option
@output_options(formats=("table", "json"))
def toy(db, output):
    click.echo(f"{db} {output}")


@click.command()
@click.argument("first")
@db_option
@output_options
@device_option(default="auto", help="Where.")
def toy_all(first, db, output, device):
    click.echo(f"{first} {db} {output} {device}")


def test_output_options_pass_one_format_and_refuse_two_or_one_that_does_not_apply():
    runner = CliRunner()
    assert runner.invoke(toy, []).output == "None table\n"
    assert runner.invoke(toy, ["--json"]).output == "None json\n"
    assert runner.invoke(toy_all, ["x", "--csv"]).output == "x None csv auto\n"
    both = runner.invoke(toy_all, ["x", "--json", "--csv"])
    assert both.exit_code == 2 and "--json and --csv are mutually exclusive" in both.output
    refused = runner.invoke(toy, ["--csv"])
    assert refused.exit_code == 2 and "no CSV output: use --table or --json" in refused.output
    assert "--csv" not in runner.invoke(toy, ["--help"]).output


def test_db_option_takes_the_option_or_the_argument_but_not_two_different_ones(tmp_path):
    runner = CliRunner()
    assert runner.invoke(toy, ["a.db"]).output == "a.db table\n"
    assert runner.invoke(toy, ["--db", "a.db"]).output == "a.db table\n"
    assert runner.invoke(toy_all, ["x", "a.db", "--db", "./a.db", "--device", "cuda:1"]).output \
        == "x a.db table cuda:1\n"
    clash = runner.invoke(toy, ["a.db", "--db", "b.db"])
    assert clash.exit_code == 2 and "two databases named: a.db and --db b.db" in clash.output
