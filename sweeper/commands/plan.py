"""`sweeper plan SPACE --budget C`: print every planned trial and its cost; spend nothing."""

from __future__ import annotations

import json

import yaml

from sweeper.commands.common import add_common_options, add_space_options, overrides_from


def register(sub) -> None:
    parser = sub.add_parser(
        "plan", help="print the planned trials (N, D, C, estimated time) without running them"
    )
    add_space_options(parser)
    add_common_options(parser)
    parser.add_argument(
        "--simulate",
        type=int,
        nargs="?",
        const=3,
        default=0,
        metavar="SWEEPS",
        help="also run SWEEPS (default 3) simulated adaptive sweeps against the search space's "
        "simulation law: the CI half-widths the budget buys, the compute to reach "
        "--target-ci, and a warning when the ladder cannot reach it",
    )
    parser.add_argument(
        "--show-config",
        action="store_true",
        help="print the fully resolved search space first (defaults and extends included): "
        "saved as a YAML, it reproduces this plan",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from sweeper.config.schema import load_config
    from sweeper.plan.trials import format_plan, make_plan

    cfg = load_config(args.space, **overrides_from(args))
    plan = make_plan(cfg)
    outlook = None
    if args.simulate:
        from sweeper.sweep.forecast import forecast

        outlook = forecast(cfg, n_sweeps=args.simulate)
    if args.format == "json":
        config = {"config": yaml.safe_load(cfg.to_yaml())} if args.show_config else {}
        print(
            json.dumps(
                {
                    **config,
                    "slices": plan.slices,
                    "total_flops": plan.total_flops,
                    "budget": plan.budget,
                    "est_wall_seconds": plan.est_wall_seconds,
                    "trials": [t.to_dict() for t in plan.trials],
                    "data": [s.to_dict() for s in plan.sources],
                    "warnings": [w for w in [plan.repetition_warning] if w],
                    **({"forecast": outlook.to_dict()} if outlook else {}),
                },
                indent=2,
                default=float,
            )
        )
    else:
        if args.show_config:
            print(f"# resolved search space (defaults and extends included)\n{cfg.to_yaml()}")
        print(format_plan(plan))
        if outlook is not None:
            from sweeper.sweep.forecast import format_forecast

            print(format_forecast(outlook))
    return 0
