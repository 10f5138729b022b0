"""`sweeper report --experiment NAME [--out DIR]`: an HTML page and a markdown summary of a sweep."""

from __future__ import annotations


def register(sub) -> None:
    parser = sub.add_parser("report", help="write an HTML report (plots, fits per kind and target with CIs) and a markdown summary",
                            description="Reads the sweep from MLflow: its trial runs, the parent's fit.json and refit history.")
    parser.add_argument("--experiment", required=True, help="MLflow experiment name (e.g. sweeper-tiny)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)")
    parser.add_argument("--sweep-id", default=None, help="the sweep to report (default: the latest in the experiment)")
    parser.add_argument("--all-sweeps", action="store_true", help="pool the trials of every sweep in the experiment")
    parser.add_argument("--n-bootstrap", type=int, default=None, help="bootstrap resamples for fits the sweep did not log (default: the sweep's)")
    parser.add_argument("--out", default="report", help="output folder (default: ./report)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from sweeper.report import report_for_experiment

    report = report_for_experiment(args.experiment, tracking_uri=args.tracking_uri, sweep_id=args.sweep_id,
                                   all_sweeps=args.all_sweeps, n_bootstrap=args.n_bootstrap)
    paths = report.write(args.out)
    print(report.markdown().split("## Plots")[0].rstrip())
    print(f"\nwrote {paths['html']} and {paths['markdown']} ({len(report.figures)} plots)")
    return 0
