"""Flags shared by the commands: the output flags every command takes, and the
search-space overrides of the commands that load one (plan, run, tune)."""

from __future__ import annotations

import argparse
import typing
from typing import Any, Literal

import yaml

from sweeper.config.schema import FLAGS, field_at
from sweeper.errors import SweeperInputError


def schema_flags() -> dict[str, dict[str, Any]]:
    """argparse settings of the search-space flags (sweeper.config.schema.FLAGS): help, choices and type
    come from the schema, and the schema checks the value (after YAML parsing, like --set)."""
    flags = {}
    for name in FLAGS:
        info = field_at(name)
        literal = typing.get_origin(info.annotation) is Literal
        text = literal or str in (info.annotation, *typing.get_args(info.annotation))
        flags["--" + name.replace("_", "-")] = dict(
            dest=name,
            help=info.description,
            type=str if text else yaml.safe_load,
            choices=[str(c) for c in typing.get_args(info.annotation)] if literal else None,
        )
    return flags


def add_common_options(parser: argparse.ArgumentParser, *, quiet_help: str = "print only the result") -> None:
    """--quiet, --format and --tracking-uri: the same three flags on every subcommand."""
    parser.add_argument("--quiet", action="store_true", help=quiet_help)
    parser.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help="the result as a table for people (default) or as JSON",
    )
    parser.add_argument(
        "--tracking-uri", dest="tracking_uri", default=None, help=field_at("tracking_uri").description
    )


def add_space_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "space", nargs="?", default="tiny", help="search space: a YAML path or a bundled name (default: tiny)"
    )
    for flag, kwargs in schema_flags().items():
        parser.add_argument(flag, default=None, **kwargs)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key by its dotted name, e.g. --set training.lr=1e-3",
    )


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in FLAGS:
        if getattr(args, name, None) is not None:
            out[name] = getattr(args, name)
    if getattr(args, "tracking_uri", None) is not None:  # added by add_common_options
        out["tracking_uri"] = args.tracking_uri
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SweeperInputError("--set", item, "write it as KEY=VALUE, e.g. training.lr=1e-3")
        out[key.strip()] = yaml.safe_load(raw)
    return out
