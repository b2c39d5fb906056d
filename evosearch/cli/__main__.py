"""``python -m evosearch.cli``: the same as the ``evosearch`` command."""

from evosearch.cli import main

main(prog_name="evosearch")
