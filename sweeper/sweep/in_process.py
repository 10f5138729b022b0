"""Simulated sweeps in the driver process: the speed of the sampler and the fitter, not of Ray.

A simulated trial is one law evaluation; Ray Tune's per-trial machinery (an
actor, a result round trip, a checkpoint folder) costs a thousand times more.
This driver takes the same searcher, session (ledger, refits, progress) and
MLflow recorder as the Tune path and runs each trial inline, one at a time.
Sweeps that inject faults or delays still go through Ray, where those are tested.
"""

from __future__ import annotations

import itertools

from ray.tune.search import Searcher

from sweeper.plan.trials import PlannedTrial
from sweeper.sweep.session import SweepSession
from sweeper.trial.faults import NO_HARNESS, Harness
from sweeper.trial.simulated import simulated_result


def run_in_process(
    base: dict,
    todo: list[PlannedTrial],
    session: SweepSession,
    recorder=None,
    searcher=None,
    interrupted=lambda: False,
) -> None:
    """Run `todo` in order (grid), or what `searcher` proposes (adaptive), until the ledger stops it
    or `interrupted()` (a signal: sweeper.sweep.interruption)."""
    planned = iter(todo)
    for number in itertools.count():
        if session.ledger.stop_reason() or interrupted():
            return
        trial_id = f"inline_{number:05d}"
        if searcher is not None:
            config = searcher.suggest(trial_id)
            if config is None or config == Searcher.FINISHED:
                return
        else:
            point = next(planned, None)
            if point is None:
                return
            config = {**base, "point": point.to_dict()}
        point = config["point"]  # the dict this driver built just above
        session.started(trial_id, point)
        if recorder is not None:
            recorder.trial_started(config, trial_id)
        result = simulated_result(config)
        if recorder is not None:
            recorder.trial_completed(point["point_id"], result)
        if searcher is not None:
            searcher.on_trial_complete(trial_id, result)
        session.finished(trial_id, point, result)


def runs_in_process(cfg, harness: Harness = NO_HARNESS) -> bool:
    """Simulated, with no fault or delay injected: nothing in the sweep needs a Ray worker."""
    return cfg.trainable == "simulated" and not harness.active
