"""Law forms and the prediction: each form recovers its own law, the backtest flags a bent table and
not an exact one, and `sweeper fit --target-compute` gives the `prediction` block."""

import json

import numpy as np
import pytest

from sweeper.cli import main
from sweeper.fit import fit_law, get_law
from sweeper.fit.forms import PREDICTION_FORMS
from sweeper.fit.prediction import optimum_grid, optimum_of, predict
from sweeper.fit.synthetic import draw_losses, isoflop_design

BUDGETS = [1e19, 3e19, 1e20, 3e20, 1e21]
# One law per form, each with losses of a few nats over the grid's sizes (0.1-2e9) and tokens (1e9-1e12).
OWN_LAWS = {
    "chinchilla": {"E": 1.8, "A": 450.0, "B": 2500.0, "alpha": 0.32, "beta": 0.35},
    "interaction": {"E": 1.8, "A": 450.0, "B": 2500.0, "alpha": 0.32, "beta": 0.35, "G": 4e5},
    "data_constrained": {"E": 1.8, "A": 450.0, "B": 2500.0, "alpha": 0.32, "beta": 0.35, "S": 2e11},
    "offset_n": {"E": 1.8, "A": 450.0, "B": 2500.0, "alpha": 0.32, "beta": 0.35, "N_0": 1.5e8},
    "kaplan": {"N_c": 8e13, "alpha_N": 0.076, "D_c": 5.4e13, "alpha_D": 0.095},
    "kaplan_floor": {"E": 1.6, "N_c": 2e9, "alpha_N": 0.3, "D_c": 3e10, "alpha_D": 0.4},
}
CHINCHILLA = OWN_LAWS["chinchilla"]


def _grid(params, law="chinchilla", noise=0.0, seed=0, sizes=6):
    return draw_losses(isoflop_design(BUDGETS, sizes), params, law=law, noise=noise, seed=seed)


def test_every_prediction_form_is_registered_and_has_a_test_law():
    assert set(PREDICTION_FORMS) == set(OWN_LAWS)


@pytest.mark.parametrize("name", sorted(OWN_LAWS))
def test_each_form_recovers_its_own_law_from_noise_free_runs(name):
    truth = OWN_LAWS[name]
    frame = _grid(truth, law=name)
    fit = fit_law(frame, law=name, grid="coarse")
    law = get_law(name)
    # The fitted law reproduces the runs and extrapolates as the true one does, 100x past the grid.
    n, d = frame["n_params"].to_numpy(), frame["n_tokens"].to_numpy()
    assert np.allclose(law.predict(fit.params, n, d), frame["loss"], rtol=1e-4)
    far_n, far_d = optimum_grid(frame, 1e23)
    true_opt = optimum_of(law.predict(truth, far_n, far_d), far_n, far_d)
    fit_opt = optimum_of(law.predict(fit.params, far_n, far_d), far_n, far_d)
    assert fit_opt[2] == pytest.approx(true_opt[2], rel=2e-3)
    assert fit_opt[0] == pytest.approx(true_opt[0], rel=0.1)


def test_an_exact_table_is_trusted_and_a_bent_one_is_flagged():
    exact = _grid(CHINCHILLA, noise=0.005, seed=4)
    clean = predict(exact, target_compute=1e22, n_bootstrap=20, seed=0)
    assert clean.trusted and not clean.warnings, clean.warnings
    # The top slice bends away: 6% above what any smooth law through the lower slices gives.
    bent = exact.copy()
    top = bent["budget"] == max(BUDGETS)
    bent.loc[top, "loss"] *= 1.06
    flagged = predict(bent, target_compute=1e22, n_bootstrap=20, seed=0)
    assert not flagged.trusted
    assert any("bend away from every law form" in w and "not trusted" in w for w in flagged.warnings)


def test_the_prediction_interval_holds_the_truth_of_an_exact_law():
    frame = _grid(CHINCHILLA, noise=0.01, seed=7)
    p = predict(frame, target_compute=1e22, n_bootstrap=40, seed=1)
    n, d = optimum_grid(frame, 1e22)
    true_n, true_d, true_loss = optimum_of(get_law("chinchilla").predict(CHINCHILLA, n, d), n, d)
    assert p.trusted
    for name, value in (("N_opt", true_n), ("D_opt", true_d), ("loss", true_loss)):
        lo, hi = p.ci[name]
        assert lo <= value <= hi, (name, lo, value, hi)
    assert sum(f["weight"] for f in p.forms.values()) == pytest.approx(1.0)


def test_given_n_and_d_predicts_the_loss_of_that_model():
    frame = _grid(CHINCHILLA, noise=0.005, seed=2)
    p = predict(frame, target_n=3e9, target_d=3e12, n_bootstrap=20)
    truth = float(get_law("chinchilla").predict(CHINCHILLA, np.array([3e9]), np.array([3e12]))[0])
    assert p.compute is None and p.n_params == 3e9 and p.n_tokens == 3e12
    assert set(p.ci) == {"loss"} and p.ci["loss"][0] <= truth <= p.ci["loss"][1]


def test_fit_cli_has_the_prediction_block(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    _grid(CHINCHILLA, noise=0.005, seed=3).to_csv(path, index=False)
    assert (
        main(
            [
                "fit",
                str(path),
                "--grid",
                "coarse",
                "--bootstrap",
                "20",
                "--target-compute",
                "1e22",
                "--format",
                "json",
            ]
        )
        == 0
    )
    block = json.loads(capsys.readouterr().out)["prediction"]
    assert block["compute"] == 1e22 and block["trusted"] is True and block["warnings"] == []
    for name in ("N_opt", "D_opt", "loss"):
        lo, hi = block["ci"][name]
        assert lo <= block[name] <= hi
    assert (
        main(
            [
                "fit",
                str(path),
                "--grid",
                "coarse",
                "--bootstrap",
                "20",
                "--target-n",
                "1e9",
                "--target-d",
                "1e11",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "prediction at N = 1e+09, D = 1e+11" in out and "loss" in out and "95% [" in out


def test_an_unidentified_table_gets_a_prediction_without_intervals_and_says_why(tmp_path, capsys):
    frame = isoflop_design(BUDGETS)
    frame = frame.assign(loss=3.0 + 0.05 * np.random.default_rng(4).standard_normal(len(frame)))
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    assert (
        main(
            [
                "fit",
                str(path),
                "--grid",
                "coarse",
                "--bootstrap",
                "10",
                "--target-compute",
                "1e23",
                "--format",
                "json",
            ]
        )
        == 0
    )
    block = json.loads(capsys.readouterr().out)["prediction"]
    assert block["trusted"] is False and block["warnings"]
    assert all(v is None for v in block["ci"].values())


def test_target_n_without_target_d_is_refused(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    _grid(CHINCHILLA).to_csv(path, index=False)
    assert main(["fit", str(path), "--target-n", "1e9"]) == 2
    assert "--target-n" in capsys.readouterr().err
