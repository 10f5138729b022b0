"""Hyperparameter power laws: the exponent is recovered, intervals are honest, the band is reported."""

import math

import numpy as np
import pytest

from sweeper.errors import SweeperInputError
from sweeper.tuning.laws import fit_hparam_law, predict, summarise_rung


def rung(c, lr_opt, spread=1.3, seed=0):
    """Trials on a log grid of lr around lr_opt with a quadratic-in-log loss (+ tiny noise)."""
    rng = np.random.default_rng(seed)
    lrs = lr_opt * np.geomspace(1 / 8, 8, 13) * math.exp(rng.normal(0, 0.05))
    trials = [
        {
            "hparams": {"lr": float(lr)},
            "val_loss": 2.0 * (1 + 0.02 * math.log(lr / lr_opt) ** 2),
            "completed": True,
            "flops": c,
        }
        for lr in lrs
    ]
    trials.append({"hparams": {"lr": 1.0}, "val_loss": 9.0, "completed": False, "flops": c / 10})
    return summarise_rung({"point_id": f"p{c:g}", "budget": c, "n_params": c / 1e6}, trials, tolerance=0.01)


def test_the_exponent_and_prefactor_are_recovered_with_an_interval_around_them():
    cs = [1e10, 3e10, 1e11, 3e11, 1e12]
    rungs = [rung(c, 0.5 * c**-0.15, seed=i) for i, c in enumerate(cs)]
    fit = fit_hparam_law("lr", rungs, n_bootstrap=200, seed=0)
    assert fit.params["exponent"] == pytest.approx(-0.15, abs=0.03)
    lo, hi = fit.ci["exponent"]
    assert lo < fit.params["exponent"] < hi and lo < -0.15 < hi
    assert predict(fit, 1e11) == pytest.approx(0.5 * 1e11**-0.15, rel=0.15)
    # the near-optimal band brackets the argmin line
    assert fit.derived["near_lo_K"] * 1e11 ** fit.derived["near_lo_exponent"] < predict(fit, 1e11)
    assert fit.derived["near_hi_K"] * 1e11 ** fit.derived["near_hi_exponent"] > predict(fit, 1e11)
    assert fit.method == "hparam" and fit.to_dict()["extras"]["scale_with"] == "C"


def test_rung_summary_separates_stopped_from_finished_trials():
    r = rung(1e10, 1e-2)
    assert r.n_trials == 14 and r.n_completed == 13 and r.n_stopped == 1
    assert r.near["lr"][0] < r.best["lr"] < r.near["lr"][1]


def test_one_compute_value_cannot_give_a_slope():
    rungs = [rung(1e10, 1e-2, seed=s) for s in range(3)]
    with pytest.raises(SweeperInputError, match="two or more distinct C"):
        fit_hparam_law("lr", rungs, n_bootstrap=0)
    fit = fit_hparam_law("lr", [rung(1e10, 1e-2), rung(1e11, 5e-3)], scale_with="N", n_bootstrap=0)
    assert fit.extras["scale_with"] == "N"
