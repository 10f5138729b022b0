"""Report pieces that need no sweep: the convergence estimate, the refit-history frame."""

import math

import numpy as np
import pandas as pd

from sweeper.commands.status import estimate_compute_to_converge
from sweeper.report.sweep_report import refit_history_frame
from sweeper.sweep.ledger import Refit


def test_compute_to_converge_follows_the_fitted_power_of_compute():
    flops = np.geomspace(1e12, 1e13, 6)
    history = pd.DataFrame({"flops_spent": flops, "ci_halfwidth.a": 0.1 * (flops / 1e12) ** -0.5})
    # 0.1 * (C/1e12)^-0.5 = 0.01  <=>  C = 1e14
    assert estimate_compute_to_converge(history, 0.01) == pytest_approx(1e14 - 1e13)
    assert estimate_compute_to_converge(history, 0.5) == 0.0
    assert math.isnan(estimate_compute_to_converge(history.iloc[:0], 0.01))


def pytest_approx(value):
    import pytest

    return pytest.approx(value, rel=1e-6)


def test_refit_history_frame_from_the_in_memory_history():
    refits = [
        Refit(n_runs=6 + i, flops_spent=1e12 * (i + 1), halfwidths={"a": 0.1 / (i + 1), "b": 0.2})
        for i in range(3)
    ]
    frame = refit_history_frame(refits)
    assert list(frame["step"]) == [1, 2, 3]
    assert np.allclose(frame["ci_halfwidth.a"], [0.1, 0.05, 0.1 / 3])
