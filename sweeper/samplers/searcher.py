"""A thin Ray Tune Searcher over an Optuna study: the sampler decides where, Tune runs it.

Like ray.tune's OptunaSearch it only bridges ask/tell; unlike it, the Optuna
parameter is a point id and the trial receives the whole planned point, and it
ends the search once the sweep says stop or the budget cannot pay for another candidate.
It commits each point's compute through the session (the ledger's only writer) before Tune starts
it, so the searcher never buys a point the stop decision would not allow.
"""

from __future__ import annotations

from typing import Protocol

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState
from ray.tune.search import Searcher

from sweeper.plan.trials import PlannedTrial
from sweeper.samplers.frontier import POINT, REMAINING_FLOPS
from sweeper.train.branch_costs import point_cost


class Budget(Protocol):
    """What the searcher asks of the sweep (the session, which alone writes the ledger)."""

    @property
    def remaining(self) -> float: ...

    def stop_reason(self) -> str: ...

    def commit(self, trial_id: str, point_id: str, cost: float) -> None: ...

    def no_candidate(self, reason: str) -> None: ...


class PointSearcher(Searcher):
    def __init__(
        self,
        *,
        sampler: optuna.samplers.BaseSampler,
        candidates: tuple[PlannedTrial, ...],
        base_config: dict,
        budget: Budget,
        finished: dict[str, float] | None = None,
        cooldown_frac: float | None = None,
        resume_from: dict[str, str] | None = None,
    ):
        super().__init__(metric="loss", mode="min")
        self.resume_from = resume_from or {}  # point_id -> checkpoint of a trial an interruption stopped
        self.by_id = {p.point_id: p for p in candidates}
        self.distribution = CategoricalDistribution([p.point_id for p in candidates])
        self.base_config = base_config
        self.budget = budget
        self.cooldown_frac = cooldown_frac  # set with cooldown branching: points cost what they add
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(direction="minimize", sampler=sampler)
        self._live: dict[str, optuna.trial.Trial] = {}
        for pid, loss in (finished or {}).items():  # a resumed sweep: the sampler sees what MLflow holds
            if pid in self.by_id:
                self.study.add_trial(
                    optuna.trial.create_trial(
                        params={POINT: pid}, distributions={POINT: self.distribution}, value=loss
                    )
                )

    def suggest(self, trial_id: str):
        if self.budget.stop_reason():
            return Searcher.FINISHED
        remaining = self.budget.remaining
        taken = [
            self.by_id[p]
            for t in self.study.get_trials(deepcopy=False)
            if (p := t.params.get(POINT)) in self.by_id
        ]
        if not any(self._cost(p, taken) <= remaining for p in self.by_id.values() if p not in taken):
            self.budget.no_candidate(
                f"no candidate left that the remaining {max(remaining, 0.0):.3g} FLOPs can pay for"
            )
            return Searcher.FINISHED
        self.study.set_user_attr(REMAINING_FLOPS, remaining)
        trial = self.study.ask({POINT: self.distribution})
        point = self.by_id[trial.params[POINT]]
        cost = self._cost(point, taken)
        if cost > remaining or any(t.params.get(POINT) == point.point_id for t in self._others(trial)):
            self.study.tell(trial, state=TrialState.FAIL)  # the sampler found nothing affordable and new
            self.budget.no_candidate("the sampler found no affordable new candidate")
            return Searcher.FINISHED
        self._live[trial_id] = trial
        self.budget.commit(trial_id, point.point_id, cost)
        checkpoint = self.resume_from.get(point.point_id)  # proposed again: continue where it stopped
        return {
            **self.base_config,
            "point": {**point.to_dict(), **({"checkpoint": checkpoint} if checkpoint else {})},
        }

    def _cost(self, point: PlannedTrial, taken) -> float:

        return point_cost(point, taken, self.cooldown_frac)

    def _others(self, trial):
        return [t for t in self.study.get_trials(deepcopy=False) if t.number != trial.number]

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        trial = self._live.pop(trial_id, None)
        if trial is None:
            return
        if error or not result or result.get("status", "ok") != "ok" or "loss" not in result:
            self.study.tell(trial, state=TrialState.FAIL)
        else:
            self.study.tell(trial, float(result["loss"]))
