"""Flags shared by the commands: the output flags every command takes, and the
search-space overrides of the commands that load one (plan, run, tune)."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from sweeper.errors import SweeperInputError

# flag -> config alias (see sweeper.config.ALIASES); argparse's dest is the alias.
OVERRIDE_FLAGS = {
    "--budget": dict(type=float, help="total FLOPs the sweep may spend"),
    "--seed": dict(type=int),
    "--design": dict(choices=["grid", "adaptive"], help="uniform isoFLOP grid, or adaptive placement"),
    "--trainable": dict(choices=["torch", "simulated"], help="real training, or the labelled simulated law"),
    "--kind": dict(help="model kind from the registry"),
    "--sim-law": dict(dest="sim_law", help='simulated law parameters, e.g. "E=1.9,A=400,B=2000,alpha=0.34,beta=0.37"'),
    "--noise": dict(type=float, help="simulated multiplicative noise (std of log loss)"),
    "--law": dict(help="law to fit (default chinchilla)"),
    "--n-bootstrap": dict(dest="n_bootstrap", type=int),
    "--target-ci": dict(dest="target_ci", type=float, help="stop when every watched CI half-width is at most this"),
    "--target-compute": dict(dest="target_compute", type=float,
                             help="FLOPs the law will be used at: fits add log_L_opt, its predicted optimal loss there"),
    "--experiment": dict(help="MLflow experiment name (default sweeper-SPACE)"),
    "--ray-address": dict(dest="ray_address", help='Ray cluster address ("auto" inside a cluster); default: local Ray'),
    "--max-concurrent-trials": dict(dest="max_concurrent_trials", type=int),
}


TRACKING_HELP = "MLflow tracking URI (default $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)"


def add_common_options(parser: argparse.ArgumentParser, *, quiet_help: str = "print only the result") -> None:
    """--quiet, --format and --tracking-uri: the same three flags on every subcommand."""
    parser.add_argument("--quiet", action="store_true", help=quiet_help)
    parser.add_argument("--format", choices=["table", "json"], default="table",
                        help="the result as a table for people (default) or as JSON")
    parser.add_argument("--tracking-uri", dest="tracking_uri", default=None, help=TRACKING_HELP)


def add_space_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", nargs="?", default="tiny", help="search space: a YAML path or a bundled name (default: tiny)")
    for flag, kwargs in OVERRIDE_FLAGS.items():
        parser.add_argument(flag, default=None, **kwargs)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key by its dotted name, e.g. --set training.lr=1e-3")


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for flag, kwargs in OVERRIDE_FLAGS.items():
        dest = kwargs.get("dest", flag.lstrip("-").replace("-", "_"))
        value = getattr(args, dest, None)
        if value is not None:
            out[dest] = value
    if getattr(args, "tracking_uri", None) is not None:  # added by add_common_options
        out["tracking_uri"] = args.tracking_uri
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SweeperInputError("--set", item, "write it as KEY=VALUE, e.g. training.lr=1e-3")
        out[key.strip()] = yaml.safe_load(raw)
    return out
