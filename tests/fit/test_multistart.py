"""The vectorised multi-start search against the plain per-start scipy loop."""

import numpy as np
import pytest

from sweeper.fit import get_law
from sweeper.fit.lbfgs import batched_lbfgs
from sweeper.fit.multistart import SearchSettings, find_optimum, per_start_scipy
from sweeper.fit.synthetic import TABLE2_AVG, TABLE12_DENSE, draw_losses, isoflop_design, token_design

CASES = [
    ("table2", lambda: draw_losses(token_design(90, seed=1), TABLE2_AVG, noise=0.01, seed=2)),
    ("table12", lambda: draw_losses(token_design(120, seed=3), TABLE12_DENSE, noise=0.005, seed=4)),
    ("isoflop", lambda: draw_losses(isoflop_design([1e19, 1e20, 1e21], 6), TABLE2_AVG, noise=0.02, seed=5)),
]


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_vectorised_no_worse_than_per_start_loop(name, make):
    frame = make()
    law = get_law("chinchilla")
    y = np.log(frame["loss"].to_numpy())
    rng = np.random.default_rng(0)
    paper = law.grid(None, "paper")
    # Same starts for both: the coarse grid plus a random slice of the paper grid.
    # (Fewer for the isoflop case: E is unidentified there, so every loop start
    # crawls to the iteration cap along the flat valley.)
    coarse = law.grid(None, "coarse")[:: 3 if name == "isoflop" else 1]
    starts = np.vstack([coarse, paper[rng.choice(len(paper), 60)]])
    # Small screening subsample so the screening/pruning path is exercised.
    opt = find_optimum(law, frame, y, starts, SearchSettings(screen_runs=32))
    _, loop = per_start_scipy(law, frame, y, starts)
    best = np.nanmin(loop)
    # Where E is unidentified (the isoflop case) the infimum is not attained: both stop
    # at the iteration cap somewhere along a flat valley, ~1e-9 apart depending on the
    # CPU's floating-point rounding. Identified cases reach the same point.
    tol = 1e-8 if name == "isoflop" else 1e-11
    assert opt.objective <= best * (1 + tol), (opt.objective, best)


def test_batched_lbfgs_solves_independent_quadratics():
    rng = np.random.default_rng(0)
    mats = np.stack([np.diag(rng.uniform(0.1, 100, 5)) for _ in range(20)])
    centres = rng.normal(size=(20, 5))

    def fg(x, rows):
        diff = x - centres[rows]
        g = np.einsum("sij,sj->si", mats[rows], diff)
        return 0.5 * np.einsum("si,si->s", diff, g), g

    x, f, _ = batched_lbfgs(fg, np.zeros((20, 5)), max_iter=500)
    np.testing.assert_allclose(x, centres, atol=1e-5)


def test_warm_started_bootstrap_matches_full_grid_refit():
    from sweeper.fit.bootstrap import bootstrap_thetas, resample_weights
    from sweeper.fit.objective import objective_and_grad

    law = get_law("chinchilla")
    frame = draw_losses(token_design(100, seed=3), TABLE2_AVG, noise=0.005, seed=4)
    y = np.log(frame["loss"].to_numpy())
    grid = law.grid(None, "coarse")
    opt = find_optimum(law, frame, y, grid)
    thetas = bootstrap_thetas(law, frame, y, opt.local_optima, 4, 11)
    weights, design = resample_weights(len(frame), 4, 11), law.design(frame)
    for theta, w in zip(thetas, weights):
        warm = objective_and_grad(law, design, y, theta[None], w, want_grad=False)[0][0]
        cold = find_optimum(law, frame, y, grid, weights=w).objective
        assert warm <= cold * (1 + 1e-9), (warm, cold)
