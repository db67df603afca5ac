"""The `hubheads` command: parses its arguments with the standard library alone, then runs the command.

`import hubheads` registers the architectures with the transformers Auto classes (torch and transformers load:
seconds), so the console script lives beside the package rather than in it: `hubheads --help`, `hubheads CMD --help`
and an argument error answer at once, and torch loads only when a command runs (`hubheads.cli`, its handlers).
"""

from __future__ import annotations

from collections.abc import Sequence

from hubheads_cli.parsers import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `hubheads ARGV` (the process's arguments when `None`); returns the exit status."""
    args = build_parser().parse_args(argv)
    from hubheads.cli import run  # torch and transformers load here, once a command runs

    return run(args)


__all__ = ["build_parser", "main"]
