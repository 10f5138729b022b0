"""The profile of a nested form's extra term: a pin at the true value reproduces the runs, pins the runs
rule out get no weight, and the prediction's interval reaches what a boundary fit's bootstrap cannot."""

import numpy as np
import pytest

from sweeper.fit.prediction import predict
from sweeper.fit.profile import PINS, pin_values, profile_fits, profile_likelihoods
from sweeper.fit.synthetic import draw_losses, isoflop_design
from sweeper.report.sweep_report import prediction_forms_table

BUDGETS = [1e19, 3e19, 1e20, 3e20, 1e21]
CHINCHILLA = {"E": 1.8, "A": 450.0, "B": 2500.0, "alpha": 0.32, "beta": 0.35}


@pytest.mark.parametrize("form", sorted(PINS))
def test_a_pin_at_the_true_term_reproduces_noise_free_runs(form):
    design = isoflop_design(BUDGETS, 6)
    key, multiples = PINS[form]
    true_value = pin_values(design, key, multiples)[2]
    frame = draw_losses(design, {**CHINCHILLA, key: true_value}, law=form, noise=0.0)
    y = np.log(frame["loss"].to_numpy(float))
    pins = profile_fits(form, frame, y)
    assert [p.value for p in pins] == pytest.approx(list(pin_values(frame, key, multiples)))
    ssr = np.array([p.ssr for p in pins])
    assert ssr[2] < 1e-8  # the true term, the rest of the law refitted: the runs exactly
    assert np.all(np.delete(ssr, 2) > 100 * ssr[2])
    assert pins[2].params["alpha"] == pytest.approx(CHINCHILLA["alpha"], rel=1e-3)


def test_likelihoods_are_relative_to_the_best_member():
    class Pin:
        def __init__(self, ssr):
            self.ssr = ssr

    sigma = 0.01
    lik = profile_likelihoods(1e-3, [Pin(1e-3 + 4 * sigma**2), Pin(0.5e-3)], sigma)
    assert lik[2] == pytest.approx(1.0)
    assert lik[0] == pytest.approx(np.exp(-0.5 * 0.5e-3 / sigma**2))
    assert lik[1] == pytest.approx(np.exp(-0.5 * (4 + 5)))


def test_saturation_the_runs_cannot_see_widens_the_interval_toward_it():
    # Data that saturates past the ladder's largest token count: the runs fit Chinchilla's law within
    # noise, but 100x away the optimum moves to more parameters (a larger a). The profile's pins at
    # S near the ladder carry that into the interval; the prediction lists them under its form.
    design = isoflop_design(BUDGETS, 6)
    s = 4.0 * design["n_tokens"].max()
    frame = draw_losses(design, {**CHINCHILLA, "S": s}, law="data_constrained", noise=0.01, seed=3)
    pred = predict(frame, target_compute=1e23, n_bootstrap=20, seed=0)
    profile = pred.forms["data_constrained"]["profile"]
    assert [p["S"] for p in profile] == pytest.approx(
        list(pin_values(frame, "S", PINS["data_constrained"][1]))
    )
    saturating = [p["a"] for p in profile if p["likelihood"] > 0.1]
    assert saturating and max(saturating) > pred.exponents["a"]
    assert pred.ci["a"][1] >= max(p["a"] for p in profile if p["likelihood"] > 0.5) - 0.02
    # The report lists the pins under their form, with the part of its weight each carries.
    table = prediction_forms_table(pred)
    pinned = table[table["law form"].str.startswith("  S pinned at")]
    assert len(pinned) == len(profile)
    weight = pred.forms["data_constrained"]["weight"]
    assert pinned["weight"].astype(float).sum() <= weight + 0.01 * len(profile)
