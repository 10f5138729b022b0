"""The points an adaptive design may choose from: isoFLOP budgets × ladder sizes.

Budgets are geometric and finer than the grid's slices (`steps_per_slice` per
slice ratio), reach down to the cheapest budget any trial can fill and stop at
the grid's largest slice, so the sampler can buy cheap, informative points
between and under the grid's slices without ever spending more per trial than
the grid would. Each candidate is a PlannedTrial, so every proposal is a ladder size on
an isoFLOP slice within rounding of its budget.
"""

from __future__ import annotations

import numpy as np

from sweeper.config.schema import SweepConfig
from sweeper.plan.trials import Plan, PlannedTrial, branchable, model_specs, slice_trials

# Candidate budgets per slice ratio. Finer budgets give the sampler more distinct cheap points
# (each adds information at its own noise draw) before it must climb to dearer budgets:
# 4 -> 8 cut sweep_efficiency's compute by 25-40%; 16 gained little more and extrapolated worse.
STEPS_PER_SLICE = 8


def slice_ratio(plan: Plan, default: float = 3.0) -> float:
    slices = sorted(plan.slices)
    if len(slices) < 2:
        return default
    return float((slices[-1] / slices[0]) ** (1.0 / (len(slices) - 1)))


def candidate_budgets(
    plan: Plan, *, lowest: float, steps_per_slice: int = STEPS_PER_SLICE
) -> tuple[float, ...]:
    """Geometric budgets ratio**(1/steps_per_slice) apart, from `lowest` up to the largest slice.

    Counted down from the largest slice so that the grid's own slices are among them.
    """
    ratio = slice_ratio(plan)
    step = ratio ** (1.0 / steps_per_slice)
    hi = max(plan.slices)
    n = max(int(np.floor(np.log(hi / lowest) / np.log(step))), 0) + 1
    return tuple(float(hi * step ** -(n - 1 - i)) for i in range(n))


def cheapest_budget(specs, cfg: SweepConfig) -> float:
    """No trial of any ladder size can fill a budget below this (min_steps of the smallest)."""
    return min(s.flops_per_token * cfg.training.batch_size * s.seq_len for s in specs) * cfg.budgets.min_steps


def candidate_points(cfg: SweepConfig, plan: Plan, **budget_kwargs) -> tuple[PlannedTrial, ...]:
    """Every ladder size that can fill each candidate budget, cheapest budgets included.

    The grid's slices are sized to spend the sweep's budget; the adaptive design
    is not bound to them, and cheap points carry as much information per run as
    dear ones (the noise is multiplicative), so the candidates reach down to the
    cheapest budget a trial can fill.
    """
    specs = model_specs(cfg)
    budget_kwargs.setdefault("lowest", cheapest_budget(specs, cfg))
    points: dict[str, PlannedTrial] = {}
    for budget in candidate_budgets(plan, **budget_kwargs):
        for p in slice_trials(specs, budget, cfg):
            points.setdefault(p.point_id, p)
    return tuple(branchable(points.values(), specs, cfg))


def initial_design(
    plan: Plan,
    candidates: tuple[PlannedTrial, ...],
    sizes_per_slice: int = 3,
    n_slices: int = 2,
    spacing: int = STEPS_PER_SLICE,
) -> tuple[str, ...]:
    """A coarse grid: on the `n_slices` cheapest budgets holding `sizes_per_slice` sizes
    (every `spacing`-th such budget, so one slice ratio apart by default), the smallest,
    middle and largest size that fit.

    Cheap on purpose: it only has to identify the law well enough for the
    sampler's first informed proposal; two budgets separate N from D.
    """
    by_budget: dict[float, list[PlannedTrial]] = {}
    for p in candidates:
        by_budget.setdefault(p.budget, []).append(p)
    usable = [b for b in sorted(by_budget) if len(by_budget[b]) >= sizes_per_slice]
    chosen: list[str] = []
    for budget in usable[::spacing][:n_slices]:
        sizes = sorted(by_budget[budget], key=lambda p: p.n_params)
        picks = np.unique(np.linspace(0, len(sizes) - 1, sizes_per_slice).round().astype(int))
        chosen.extend(sizes[i].point_id for i in picks)
    return tuple(chosen)
