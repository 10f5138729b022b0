"""`sweeper plan SPACE --budget C`: print every planned trial and its cost; spend nothing."""

from __future__ import annotations

import json

from sweeper.commands.common import add_common_options, add_space_options, overrides_from


def register(sub) -> None:
    parser = sub.add_parser("plan", help="print the planned trials (N, D, C, estimated time) without running them")
    add_space_options(parser)
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from sweeper.config import load_config
    from sweeper.plan import format_plan, make_plan

    plan = make_plan(load_config(args.space, **overrides_from(args)))
    if args.format == "json":
        print(json.dumps({"slices": plan.slices, "total_flops": plan.total_flops, "budget": plan.budget,
                          "est_wall_seconds": plan.est_wall_seconds, "trials": [t.to_dict() for t in plan.trials]}, indent=2))
    else:
        print(format_plan(plan))
    return 0
