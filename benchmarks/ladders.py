"""The ladders and laws the design benchmarks run on (sweep_efficiency.py, design_bound.py).

Ladders: the embedded default's tiny ladder and every bundled paper space, each at its own
budget and slices, as a user runs it. Laws: three shapes (E, alpha, beta) that no test uses,
each placed on a ladder so that its compute-optimal size at the grid's middle slice is the
ladder's middle size (geometric mean) with the reducible loss there REDUCIBLE x E. A law
whose optimum lies off the ladder would measure the ladder, not the design.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sweeper.config.schema import SweepConfig, load_config
from sweeper.fit.derived import closed_form, optimum_at
from sweeper.plan.trials import Plan, PlannedTrial, make_plan, model_specs, slice_trials

SPACES = ("tiny", "text_chinchilla", "early_fusion", "late_fusion", "moe")
SHAPES = {
    "S1 (E=2.0,alpha=0.30,beta=0.38)": {"E": 2.0, "alpha": 0.30, "beta": 0.38},
    "S2 (E=1.7,alpha=0.42,beta=0.29)": {"E": 1.7, "alpha": 0.42, "beta": 0.29},
    "S3 (E=2.3,alpha=0.36,beta=0.45)": {"E": 2.3, "alpha": 0.36, "beta": 0.45},
    # Fresh laws, added after the sampler's constants were set: the figures must hold on them too.
    "S4 (E=2.15,alpha=0.26,beta=0.33)": {"E": 2.15, "alpha": 0.26, "beta": 0.33},
    "S5 (E=1.75,alpha=0.48,beta=0.40)": {"E": 1.75, "alpha": 0.48, "beta": 0.40},
}
REDUCIBLE = 0.35
WATCH = ("a", "b")


@dataclass(frozen=True)
class Setup:
    space: str
    cfg: SweepConfig  # simulated, against `params`; design grid (replace(design=...) for the other)
    plan: Plan  # the grid the space plans at its budget
    held_out: tuple[PlannedTrial, ...]  # every size at one slice ratio past the grid's largest slice
    params: dict[str, float]


def place(shape: dict, n_mid: float, d_mid: float) -> dict[str, float]:
    """A, B such that (n_mid, d_mid) is compute-optimal (alpha A/N^alpha = beta B/D^beta) and the
    two terms add up to REDUCIBLE x E there."""
    e, alpha, beta = shape["E"], shape["alpha"], shape["beta"]
    n_term = REDUCIBLE * e * beta / (alpha + beta)
    d_term = REDUCIBLE * e * alpha / (alpha + beta)
    return {"E": e, "A": n_term * n_mid**alpha, "B": d_term * d_mid**beta, "alpha": alpha, "beta": beta}


def setup(space: str, shape: dict, *, n_bootstrap: int, noise: float) -> Setup:
    base = load_config(space, trainable="simulated", design="grid", n_bootstrap=n_bootstrap, noise=noise)
    plan = make_plan(base)
    specs = model_specs(base)
    n_mid = float(np.exp(np.mean(np.log([s.n_params for s in specs]))))
    c_mid = plan.slices[len(plan.slices) // 2]
    params = place(shape, n_mid, c_mid / (6.0 * n_mid))
    cfg = base.replace(simulation=base.simulation.replace(law="chinchilla", params=params))
    held_out = tuple(slice_trials(specs, plan.slices[-1] * cfg.budgets.ratio, cfg))
    return Setup(space=space, cfg=cfg, plan=plan, held_out=held_out, params=params)


def true_optimum(params: dict, held_out) -> tuple[np.ndarray, np.ndarray]:
    """([N_opt], [D_opt]) of the noise-free law at the held-out budget."""
    k = float(np.median([t.flops / (t.n_params * t.n_tokens) for t in held_out]))
    return optimum_at(closed_form(params, k), [held_out[0].budget])


def truth(params: dict) -> dict[str, float]:
    """The exponents a law implies: a = beta / (alpha + beta), b = alpha / (alpha + beta), alpha, beta."""
    s = params["alpha"] + params["beta"]
    return {
        "a": params["beta"] / s,
        "b": params["alpha"] / s,
        "alpha": params["alpha"],
        "beta": params["beta"],
    }
