"""What cooldown branching costs, without training anything (the planner, sampler and searcher use it).

With the WSD schedule a run of T steps is warmup + stable up to step
S = T - round(cooldown_frac * T), then a cooldown. One stable run per model size
serves every point of that size; each point adds its cooldown and the stable
steps no shorter point needed. `sweeper.train.branching` does the training.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sweeper.train.schedules import cooldown_start, warmup_steps_for


def branch_step(total_steps: int, cooldown_frac: float) -> int:
    """The stable step a run of `total_steps` branches from: where its cooldown starts."""
    return cooldown_start(total_steps, cooldown_frac)


@dataclass(frozen=True, kw_only=True)
class Branch:
    point_id: str
    branch_step: int  # the stable snapshot it starts from
    total_steps: int

    @property
    def cooldown_steps(self) -> int:
        return self.total_steps - self.branch_step


@dataclass(frozen=True, kw_only=True)
class SizeBranches:
    """One model size: its stable run and the cooldown branches off it, shortest first."""

    kind: str
    size: str
    flops_per_step: float
    branches: tuple[Branch, ...]

    @property
    def stable_steps(self) -> int:
        return max(b.branch_step for b in self.branches)

    @property
    def steps(self) -> int:
        return self.stable_steps + sum(b.cooldown_steps for b in self.branches)

    @property
    def flops(self) -> float:
        return self.steps * self.flops_per_step

    def charged_flops(self) -> dict[str, float]:
        """Per point: its cooldown plus the stable steps first needed by it."""
        out, reached = {}, 0
        for b in self.branches:
            out[b.point_id] = (max(0, b.branch_step - reached) + b.cooldown_steps) * self.flops_per_step
            reached = max(reached, b.branch_step)
        return out


def plan_branches(trials: Iterable, cooldown_frac: float) -> list[SizeBranches]:
    """Group planned trials (sweeper.plan.trials.PlannedTrial) by model size into stable runs + branches."""
    groups: dict[tuple[str, str], list] = {}
    for t in trials:
        groups.setdefault((t.kind, t.size), []).append(t)
    out = []
    for (kind, size), ts in groups.items():
        ts = sorted(ts, key=lambda t: t.steps)
        branches = tuple(
            Branch(point_id=t.point_id, branch_step=branch_step(t.steps, cooldown_frac), total_steps=t.steps)
            for t in ts
        )
        out.append(
            SizeBranches(kind=kind, size=size, flops_per_step=ts[0].flops / ts[0].steps, branches=branches)
        )
    return out


def branched_flops(trials: Iterable, cooldown_frac: float) -> float:
    """What a plan costs with branching (each size's stable phase counted once)."""
    return float(sum(s.flops for s in plan_branches(trials, cooldown_frac)))


def marginal_flops(trial, *, stable_steps_done: int, cooldown_frac: float) -> float:
    """Cost of adding `trial` when its size's stable run has already reached `stable_steps_done`.

    What the planner and the adaptive sampler should charge a candidate point:
    a fresh run costs trial.flops; a branch only its cooldown plus any stable
    steps beyond what is already trained.
    """
    per_step = trial.flops / trial.steps
    s = branch_step(trial.steps, cooldown_frac)
    return (max(0, s - stable_steps_done) + (trial.steps - s)) * per_step


def stable_steps_before(point, others: Iterable, cooldown_frac: float) -> int:
    """Stable steps of `point`'s size that `others` (trained or in flight) leave in the store for it."""
    s = branch_step(point.steps, cooldown_frac)
    return max(
        (
            b
            for o in others
            if (o.kind, o.size) == (point.kind, point.size)
            and (b := branch_step(o.steps, cooldown_frac)) <= s
        ),
        default=0,
    )


def point_cost(point, others: Iterable, cooldown_frac: float | None) -> float:
    """FLOPs a trial of `point` spends: all of them, or with branching (cooldown_frac set)
    its cooldown plus the stable steps no point of `others` has trained yet."""
    if cooldown_frac is None:
        return point.flops
    done = stable_steps_before(point, others, cooldown_frac)
    return marginal_flops(point, stable_steps_done=done, cooldown_frac=cooldown_frac)


def shared_warmups(trials: Iterable, warmup_frac: float) -> dict[str, int]:
    """'kind/size' -> warmup steps every branch of that size uses (from its shortest candidate)."""
    shortest: dict[str, int] = {}
    for t in trials:
        key = f"{t.kind}/{t.size}"
        shortest[key] = min(shortest.get(key, t.steps), t.steps)
    return {k: warmup_steps_for(steps, warmup_frac=warmup_frac) for k, steps in shortest.items()}
