"""The ``sessionsgit`` command line: parsing, output and error translation only."""

from __future__ import annotations

import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sessionsgit")
def cli() -> None:
    """Durable LLM conversations stored in Git."""


def main() -> None:
    """Console-script entry point."""
    cli()
