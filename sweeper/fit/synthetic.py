"""Run tables drawn from known laws, for tests, benchmarks and planning.

Parameter sets come from the reference study. Table 2 reports E, alpha and beta
but not A and B; TABLE2_AVG picks A and B that give losses of the size the paper
plots (about 2.5 to 3.5 over 0.3B-4B parameters and 0.25B-600B tokens).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweeper.fit.laws import extra_columns
from sweeper.fit.registry import get_law

TABLE2_AVG = {"E": 1.904, "A": 300.0, "B": 1500.0, "alpha": 0.301, "beta": 0.335}
# Table 12, the dense form fitted to sparse (MoE) models with N = active parameters.
TABLE12_DENSE = {"E": 2.158, "A": 381773.0, "B": 4659.0, "alpha": 0.710, "beta": 0.372}
# Table 12, the sparsity-aware form.
TABLE12_SPARSE = {
    "E": 1.0788,
    "A": 1.0,
    "B": 4660.0,
    "alpha": 0.5890,
    "beta": 0.3720,
    "C": 1.0788,
    "lambda": 0.2,
    "d": 381475.0,
    "delta": 0.2,
    "gamma": 0.70956,
}
# The model sizes of the reference's early-fusion ladder (Figure 23/24 legends).
PAPER_SIZES = (0.275e9, 0.464e9, 0.932e9, 1.627e9, 2.280e9, 3.354e9)


def token_design(n_runs: int, sizes=PAPER_SIZES, d_min=2.5e8, d_max=6e11, seed: int = 0) -> pd.DataFrame:
    """Few sizes, many token counts: each size gets log-spaced D with jitter."""
    rng = np.random.default_rng(seed)
    per = int(np.ceil(n_runs / len(sizes)))
    rows = []
    for n in sizes:
        log_d = np.linspace(np.log(d_min), np.log(d_max), per)
        log_d += rng.uniform(-0.5, 0.5, per) * (log_d[1] - log_d[0] if per > 1 else 0)
        rows += [(n, float(np.exp(v))) for v in log_d]
    frame = pd.DataFrame(rows[:n_runs], columns=["n_params", "n_tokens"])
    frame["flops"] = 6.0 * frame["n_params"] * frame["n_tokens"]
    return frame


def isoflop_design(budgets, sizes_per_budget: int = 7, span: float = 1.2) -> pd.DataFrame:
    """For each budget C, sizes log-spaced around a rough optimum, D = C / (6N)."""
    rows = []
    for c in budgets:
        centre = 0.1 * np.sqrt(c / 6.0)
        for log_n in np.linspace(-span, span, sizes_per_budget):
            n = centre * np.exp(log_n)
            rows.append((n, c / (6.0 * n), c, c))
    return pd.DataFrame(rows, columns=["n_params", "n_tokens", "flops", "budget"])


def draw_losses(
    frame: pd.DataFrame,
    params: dict,
    *,
    law: str = "chinchilla",
    noise: float = 0.005,
    seed: int = 0,
    column: str = "loss",
) -> pd.DataFrame:
    """Loss from the law times lognormal noise (sigma `noise` in log space)."""
    rng = np.random.default_rng(seed)
    clean = get_law(law).predict(
        params, frame["n_params"].to_numpy(), frame["n_tokens"].to_numpy(), **extra_columns(frame)
    )
    out = frame.copy()
    out[column] = clean * np.exp(noise * rng.standard_normal(len(frame)))
    return out
