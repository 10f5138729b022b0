"""`sweeper` console script: one subcommand per module in sweeper/commands/."""

from __future__ import annotations

import argparse
import importlib
import sys

from sweeper.errors import SweeperInputError

# Each module exposes register(subparsers); its parser sets `func(args) -> int`.
COMMANDS = ("plan", "run", "fit", "status", "report", "compare", "tune", "schema", "tokenizer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweeper",
        description="Ray-distributed isoFLOP and hyperparameter sweeps for scaling laws.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"sweeper.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sweeper.commands.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SweeperInputError as exc:
        print(f"sweeper {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sweeper {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
