"""`sweeper tune SPACE --budget C`: hyperparameter search per rung, and hyperparameter laws.

With `tune.space` set, every selected rung gets a Ray Tune search (an Optuna
sampler, ASHA on the intermediate validation losses); the optimal learning rate
and batch are then fitted as power laws of C (or N), and the job's MLflow run
id is what `training: {recipe: fitted, recipe_run: ID}` takes. With
`tune.mixtures` set instead, it runs one isoFLOP sweep per mixture and prints
the per-target laws side by side.
"""

from __future__ import annotations

import json
import sys

from sweeper.commands.common import add_common_options, add_space_options, overrides_from


def register(sub) -> None:
    parser = sub.add_parser(
        "tune", help="tune hyperparameters per rung and fit how the optimum scales with compute"
    )
    add_space_options(parser)
    parser.add_argument("--sampler", help="Optuna sampler class (default TPESampler)")
    parser.add_argument("--n-trials", dest="n_trials", type=int, help="trials per rung")
    parser.add_argument("--sizes", help="comma-separated ladder sizes to tune")
    parser.add_argument(
        "--mixtures", help="comma-separated mixtures (e.g. 45-45-10,20-40-40): run a mixture sweep"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="continue the latest tune job of the experiment (or --sweep-id); finished rungs are kept",
    )
    parser.add_argument("--sweep-id", help="tune job to resume, or the id to give a new one")
    add_common_options(parser, quiet_help="no progress lines: only the result")
    parser.set_defaults(func=run)


def run(args) -> int:
    from sweeper.config.schema import load_config

    overrides = overrides_from(args)
    for flag, key in (("sampler", "tune.sampler"), ("n_trials", "tune.n_trials")):
        if getattr(args, flag) is not None:
            overrides[key] = getattr(args, flag)
    if args.resume:
        overrides["resume"] = True
    for flag, key in (("sizes", "tune.sizes"), ("mixtures", "tune.mixtures")):
        if getattr(args, flag):
            overrides[key] = [s.strip() for s in getattr(args, flag).split(",") if s.strip()]
    cfg = load_config(args.space, **overrides)
    emit = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))  # noqa: E731
    if cfg.tune.mixtures and cfg.tune.space:
        from sweeper.errors import SweeperInputError

        raise SweeperInputError(
            "tune.mixtures",
            list(cfg.tune.mixtures),
            "a space sets either tune.space (a hyperparameter "
            "search) or tune.mixtures (a mixture sweep); split it into two spaces",
        )
    # Ray and MLflow load first, so that their own log handlers exist to be redirected to the file.
    from sweeper.library_logs import LibraryLogs
    from sweeper.tuning.mixtures import run_mixture_study
    from sweeper.tuning.report import format_tune_result
    from sweeper.tuning.search import run_tune

    if cfg.tune.mixtures:
        with LibraryLogs(kind="tune") as logs:
            emit(f"Ray and MLflow logs: {logs.path}")
            study = run_mixture_study(cfg, progress=emit)
        print(
            json.dumps(study.to_dict(), indent=2, default=float) if args.format == "json" else study.table()
        )
        if args.format == "table":
            print(f"MLflow: mixture study run {study.study_run_id} in experiment '{cfg.experiment_name}'")
        return 0
    with LibraryLogs(kind="tune") as logs:
        emit(f"Ray and MLflow logs: {logs.path}")
        result = run_tune(cfg, progress=emit, sweep_id=args.sweep_id)
    print(
        json.dumps(result.to_dict(), indent=2, default=float)
        if args.format == "json"
        else format_tune_result(result)
    )
    return 0
