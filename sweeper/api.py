"""Sweeper: plan -> Ray Tune trials -> MLflow -> fit -> SweepResult.

    result = Sweeper(budget=3e12, space="tiny").run()
    result.fit.params, result.fit.ci, result.runs.frame

Everything fails fast: the config is validated and the plan is made before Ray
starts, so a mistyped key or a budget that cannot fill a slice costs nothing.
"""

from __future__ import annotations

from typing import Any

from sweeper.config.schema import SweepConfig, load_config
from sweeper.plan.trials import Plan, make_plan
from sweeper.tracking.run_table import SweepResult
from sweeper.trial.faults import NO_HARNESS, Harness
from sweeper.trial.spec import trial_config

__all__ = ["Sweeper", "SweepResult", "trial_config"]  # re-exported: the public result and trial contract


class Sweeper:
    """The public entry point; keyword arguments override the search space."""

    def __init__(self, space: str = "tiny", *, harness: Harness = NO_HARNESS, **overrides: Any):
        self.config: SweepConfig = load_config(space, **overrides)
        self.harness = harness  # tests and benchmarks only: injected faults and delays (sweeper.trial.faults)

    def plan(self) -> Plan:
        return make_plan(self.config)

    def run(self, *, sweep_id: str | None = None, progress=None) -> SweepResult:
        # Ray and MLflow load only when a sweep runs, not when the API is imported.
        from sweeper.library_logs import LibraryLogs
        from sweeper.report.progress import ConsoleProgress
        from sweeper.sweep.execution import run_sweep

        console = progress or ConsoleProgress()
        try:
            with LibraryLogs(kind="run") as logs:
                console(f"Ray and MLflow logs: {logs.path}")
                return run_sweep(
                    self.config, self.plan(), sweep_id=sweep_id, progress=console, harness=self.harness
                )
        finally:
            getattr(console, "close", lambda: None)()
