"""A sweep that stops on its intervals reports them widened (sweeper.sweep.ledger.STOPPING_CI_WIDENING)."""

import json

import numpy as np

from sweeper.fit import fit_law
from sweeper.fit.result import FitResult
from sweeper.fit.synthetic import TABLE2_AVG, draw_losses, isoflop_design
from sweeper.report.summary import format_fit
from sweeper.sweep.ledger import STOPPING_CI_WIDENING, widened_for_stopping


def test_each_side_of_every_interval_grows_by_the_factor_about_the_estimate():
    frame = draw_losses(isoflop_design([1e19, 1e20, 1e21]), TABLE2_AVG, noise=0.005)
    fit = fit_law(frame, grid="coarse", n_bootstrap=20, seed=0)
    wide = widened_for_stopping(fit)
    assert set(wide.ci) == set(fit.ci) and wide.params == fit.params
    for name, (lo, hi) in fit.ci.items():
        v = min(max(fit.value(name), lo), hi)
        new_lo, new_hi = wide.ci[name]
        assert np.isclose(v - new_lo, STOPPING_CI_WIDENING * (v - lo))  # skew kept: each side scaled
        assert np.isclose(new_hi - v, STOPPING_CI_WIDENING * (hi - v))
    assert np.isclose(wide.ci_halfwidth("a"), STOPPING_CI_WIDENING * fit.ci_halfwidth("a"))
    again = FitResult.from_dict(json.loads(json.dumps(wide.to_dict(), default=float)))
    assert again.ci == wide.ci and again.extras["ci_widening"]["factor"] == STOPPING_CI_WIDENING
    assert any("widened 1.2x" in line for line in format_fit(wide))
    assert not any("widened" in line for line in format_fit(fit))


def test_a_fit_without_intervals_is_left_alone():
    frame = draw_losses(isoflop_design([1e19, 1e20, 1e21]), TABLE2_AVG, noise=0.005)
    fit = fit_law(frame, grid="coarse", seed=0)
    assert widened_for_stopping(fit) is fit and widened_for_stopping(None) is None
