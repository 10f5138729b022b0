"""`sweeper report --experiment NAME [--out DIR]`: an HTML page and a markdown summary of a sweep."""

from __future__ import annotations

import json

from sweeper.commands.common import add_common_options


def register(sub) -> None:
    parser = sub.add_parser(
        "report",
        help="write an HTML report (plots, fits per kind and target with CIs) and a markdown summary",
        description="Reads the sweep from MLflow: its trial runs, the parent's fit.json and refit history.",
    )
    parser.add_argument("--experiment", required=True, help="MLflow experiment name (e.g. sweeper-tiny)")
    parser.add_argument(
        "--sweep-id", default=None, help="the sweep to report (default: the latest in the experiment)"
    )
    parser.add_argument(
        "--all-sweeps", action="store_true", help="pool the trials of every sweep in the experiment"
    )
    parser.add_argument(
        "--n-bootstrap",
        type=int,
        default=None,
        help="bootstrap resamples for fits the sweep did not log (default: the sweep's)",
    )
    parser.add_argument("--out", default="report", help="output folder (default: ./report)")
    add_common_options(parser, quiet_help="print only the paths written")
    parser.set_defaults(func=run)


def run(args) -> int:
    from sweeper.report.sweep_report import report_for_experiment

    report = report_for_experiment(
        args.experiment,
        tracking_uri=args.tracking_uri,
        sweep_id=args.sweep_id,
        all_sweeps=args.all_sweeps,
        n_bootstrap=args.n_bootstrap,
    )
    paths = report.write(args.out)
    if args.format == "json":
        print(
            json.dumps(
                {
                    "paths": {k: str(v) for k, v in paths.items()},
                    "meta": report.meta,
                    "fits": report.table.to_dict(orient="records"),
                },
                indent=2,
                default=str,
            )
        )
        return 0
    if not args.quiet:
        print(report.markdown().split("## Plots")[0].rstrip() + "\n")
    print(f"wrote {paths['html']} and {paths['markdown']} ({len(report.figures)} plots)")
    return 0
