"""When to stop, as a Ray Tune stopper: it asks the ledger (sweeper.sweep.ledger.SweepLedger.stop_reason).

The sampler decides where, the ledger decides when; this class only hands the
ledger's answer to Tune, which then ends every trial and the search.
"""

from __future__ import annotations

from ray import tune

from sweeper.sweep.ledger import SweepLedger
from sweeper.tracking.mlflow_runs import DriverOnly


class ConvergenceStopper(DriverOnly, tune.Stopper):
    """Ends the whole sweep once the ledger says so; records why."""

    def __init__(self, ledger: SweepLedger):
        self.ledger = ledger
        self.stop_reason = ""

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False  # never cuts a single trial short: a half-trained point is a wrong point

    def stop_all(self) -> bool:
        self.stop_reason = self.stop_reason or self.ledger.stop_reason()
        return bool(self.stop_reason)
