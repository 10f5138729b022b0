"""Approach 1 (envelope), Approach 2 (isoFLOP), held-out evaluation, FitResult."""

import json

import numpy as np
import pytest

from sweeper.errors import SweeperInputError
from sweeper.fit import (
    FitResult,
    compare_approaches,
    envelope_fit,
    fit_law,
    fit_per_target,
    holdout_evaluate,
    isoflop_fit,
    prediction_errors,
)
from sweeper.fit.derived import closed_form
from sweeper.fit.envelope import lower_hull
from sweeper.fit.synthetic import TABLE2_AVG, draw_losses, isoflop_design, token_design

BUDGETS = [1e19, 3e19, 1e20, 3e20, 1e21, 3e21]


def test_isoflop_recovers_exponents_near_closed_form():
    frame = draw_losses(isoflop_design(BUDGETS, 9, span=1.0), TABLE2_AVG, noise=0.001, seed=1)
    res = isoflop_fit(frame, n_bootstrap=30, seed=0)
    exact = closed_form(TABLE2_AVG)
    assert abs(res.derived["a"] - exact["a"]) < 0.05
    assert res.params["a"] + res.params["b"] == pytest.approx(1.0, abs=0.02)
    assert res.ci["a"][0] < res.params["a"] < res.ci["a"][1]
    n_opt, _ = res.predict_optimum(1e20)
    assert 0.5 < n_opt / (exact["K_a"] * 1e20 ** exact["a"]) < 2.0


def test_isoflop_groups_by_rounded_flops_without_budget_column():
    frame = draw_losses(isoflop_design(BUDGETS, 7), TABLE2_AVG, noise=0.001, seed=2)
    with_budget = isoflop_fit(frame)
    without = isoflop_fit(frame.drop(columns="budget").assign(flops=frame["flops"] * 1.03))
    assert without.params["a"] == pytest.approx(with_budget.params["a"], abs=0.01)


def test_isoflop_needs_bracketing_slices():
    frame = draw_losses(isoflop_design(BUDGETS[:1], 7), TABLE2_AVG, seed=3)
    with pytest.raises(SweeperInputError, match="slices"):
        isoflop_fit(frame)


def test_envelope_recovers_power_law_of_frontier():
    rng = np.random.default_rng(0)
    c = np.geomspace(1e18, 1e22, 60)
    frame = token_design(60)
    frame["flops"] = c
    frame["loss"] = 29.574 * c**-0.049 * np.exp(0.002 * rng.standard_normal(60))
    res = envelope_fit(frame, min_compute=3e19, n_bootstrap=20)
    assert res.params["c"] == pytest.approx(-0.049, abs=0.004)
    assert res.ci["c"][0] <= res.params["c"] <= res.ci["c"][1]


def test_lower_hull_excludes_points_above():
    x = np.array([0.0, 1.0, 2.0, 1.0, 0.5])
    y = np.array([1.0, 0.0, 1.0, 2.0, 0.9])
    hx, hy = lower_hull(x, y)
    assert hx.tolist() == [0.0, 1.0, 2.0] and hy.tolist() == [1.0, 0.0, 1.0]


def test_holdout_small_error_on_law_data():
    frame = draw_losses(token_design(120, seed=5), TABLE2_AVG, noise=0.003, seed=6)
    threshold = np.quantile(frame["flops"], 0.8)
    out = holdout_evaluate(frame, compute_threshold=threshold, grid="coarse")
    assert out["held_out"]["n"] == (frame["flops"] >= threshold).sum()
    assert out["held_out"]["mae_pct"] < 1.5 and out["held_in"]["r2"] > 0.95


def test_prediction_errors_values():
    err = prediction_errors([2.0, 4.0], [2.2, 3.6])
    assert err["mse"] == pytest.approx((0.04 + 0.16) / 2)
    assert err["mae_pct"] == pytest.approx(100 * (0.1 + 0.1) / 2)
    assert err["r2"] == pytest.approx(1 - 0.2 / 2.0)


def test_per_target_fits_and_comparison():
    frame = draw_losses(token_design(60, seed=1), TABLE2_AVG, noise=0.003, seed=1)
    text = dict(TABLE2_AVG, E=2.222, alpha=0.3084, beta=0.3375)
    frame["loss_text"] = draw_losses(frame, text, seed=2)["loss"]
    fits = fit_per_target(frame, grid="coarse")
    assert set(fits) == {"text", "average"}
    assert fits["text"].params["E"] > fits["average"].params["E"]
    iso = isoflop_fit(draw_losses(isoflop_design(BUDGETS, 7), TABLE2_AVG, seed=4))
    cmp = compare_approaches(fits["average"], iso)
    assert set(cmp) == {"a", "b"}
    for c in cmp.values():  # a verdict only where both approaches have an interval
        assert (c["disagree"] is None) == (not (c["ci3"] and c["ci2"]))


def test_fit_result_round_trip_is_json():
    frame = draw_losses(token_design(40, seed=2), TABLE2_AVG, noise=0.005, seed=2)
    res = fit_law(frame, grid="coarse", n_bootstrap=5)
    data = json.loads(json.dumps(res.to_dict()))
    assert set(data) >= {"law", "params", "derived", "ci", "objective", "n_runs"}
    assert set(data["params"]) == {"E", "A", "B", "alpha", "beta"}
    back = FitResult.from_dict(data)
    assert back == res or back.to_dict() == res.to_dict()
    np.testing.assert_allclose(back.predict([1e9], [1e10]), res.predict([1e9], [1e10]))
    assert res.ci_halfwidth("alpha") > 0 and np.isinf(res.ci_halfwidth("missing"))
