"""The points an adaptive design may choose from: isoFLOP budgets × ladder sizes.

Budgets are geometric and finer than the grid's slices (and may go past them up
to the sweep's largest slice), so the sampler can place a point between slices;
each candidate is a PlannedTrial, so every proposal is a ladder size on an
isoFLOP slice within rounding of its budget.
"""

from __future__ import annotations

import numpy as np

from sweeper.config import SweepConfig
from sweeper.plan import Plan, PlannedTrial, model_specs, slice_trials


def candidate_budgets(plan: Plan) -> tuple[float, ...]:
    """The plan's slices plus the geometric midpoint between each neighbouring pair."""
    slices = sorted(plan.slices)
    mids = [float(np.sqrt(lo * hi)) for lo, hi in zip(slices, slices[1:])]
    return tuple(sorted(slices + mids))


def candidate_points(cfg: SweepConfig, plan: Plan) -> tuple[PlannedTrial, ...]:
    specs = model_specs(cfg)
    points: list[PlannedTrial] = []
    for budget in candidate_budgets(plan):
        points.extend(slice_trials(specs, budget, cfg))
    return tuple(points)


def initial_design(plan: Plan, candidates: tuple[PlannedTrial, ...], sizes_per_slice: int = 3) -> tuple[str, ...]:
    """A coarse grid: on the two smallest slices, the smallest, middle and largest size that fit.

    Cheap on purpose: it only has to identify the law well enough for the
    sampler's first informed proposal.
    """
    chosen: list[str] = []
    for budget in sorted(plan.slices)[:2]:
        sizes = sorted((p for p in candidates if p.budget == budget), key=lambda p: p.n_params)
        picks = np.unique(np.linspace(0, len(sizes) - 1, sizes_per_slice).round().astype(int))
        chosen.extend(sizes[i].point_id for i in picks)
    return tuple(chosen)
