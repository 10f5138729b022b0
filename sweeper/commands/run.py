"""`sweeper run SPACE --budget C`: run the sweep, fit, print the result."""

from __future__ import annotations

import json

from sweeper.commands.common import add_common_options, add_space_options, overrides_from


def register(sub) -> None:
    parser = sub.add_parser("run", help="run a sweep (local Ray and SQLite MLflow by default)")
    add_space_options(parser)
    parser.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="continue the latest sweep of the experiment (or --sweep-id)",
    )
    parser.add_argument("--sweep-id", help="sweep to resume, or the id to give a new sweep")
    add_common_options(parser, quiet_help="no progress lines: only the result")
    parser.set_defaults(func=run)


def run(args) -> int:
    from sweeper.api import Sweeper
    from sweeper.report.summary import format_result

    overrides = overrides_from(args)
    if args.resume:
        overrides["resume"] = True
    sweeper = Sweeper(args.space, **overrides)
    result = sweeper.run(sweep_id=args.sweep_id, progress=(lambda line: None) if args.quiet else None)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2, default=float))
    else:
        print(format_result(result))
    return 130 if result.interrupted else 0  # the shell's code for a run stopped by a signal
