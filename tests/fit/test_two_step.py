"""The two-step task law (sweeper.fit.two_step): task loss from (N, D), accuracy from task loss."""

import json

import numpy as np
import pandas as pd
import pytest

from sweeper.fit.prediction import optimum_grid, optimum_of
from sweeper.fit.registry import get_law
from sweeper.fit.synthetic import draw_losses, isoflop_design
from sweeper.fit.two_step import (
    Sigmoid,
    fit_sigmoid,
    fit_two_step,
    predict_accuracy,
    resample_counts,
    sigmoid_problems,
)

BUDGETS = np.geomspace(1e17, 1e19, 5)
SIGMOID = Sigmoid(a=0.6, b=0.25, k=-7.0, L0=1.15)


def placed_law(e=0.8, alpha=0.32, beta=0.36, reducible=0.6):
    """A Chinchilla law whose middle-budget optimum is isoflop_design's centre (interior minima)."""
    c = BUDGETS[2]
    n, d = 0.1 * np.sqrt(c / 6.0), 10.0 * np.sqrt(c / 6.0)
    r = reducible * e
    return {
        "E": e,
        "A": r * beta / (alpha + beta) * n**alpha,
        "B": r * alpha / (alpha + beta) * d**beta,
        "alpha": alpha,
        "beta": beta,
    }


def grid_frame(law, noise=0.0, seed=0, sigmoid=SIGMOID, items=None):
    frame = draw_losses(isoflop_design(BUDGETS, sizes_per_budget=6), law, noise=noise, seed=seed)
    acc = sigmoid(frame["loss"].to_numpy())
    if items:
        acc = np.random.default_rng(seed + 1).binomial(items, acc) / items
    return frame.assign(acc=acc)


def true_accuracy(frame, law, compute, sigmoid=SIGMOID):
    n, d = optimum_grid(frame, compute)
    return float(sigmoid(optimum_of(get_law("chinchilla").predict(law, n, d), n, d)[2]))


def test_noise_free_grid_recovers_sigmoid_and_accuracy_at_10x():
    law = placed_law()
    frame = grid_frame(law)
    compute = 10.0 * BUDGETS[-1]
    pred = fit_two_step(frame, "acc", {"compute": compute}, n_boot=50)
    truth = true_accuracy(frame, law, compute)
    for name, value in SIGMOID.to_dict().items():
        assert pred.sigmoid[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name
    assert pred.accuracy == pytest.approx(truth, abs=1e-5)
    assert pred.trusted and not pred.warnings
    lo, hi = pred.ci["accuracy"]
    # Without noise every resample refits the truth: the interval collapses onto it (float slack only).
    assert lo - 1e-7 <= truth <= hi + 1e-7
    assert hi - lo < 1e-5
    assert truth > frame["acc"].max() + 0.05  # a real extrapolation, past every accuracy seen
    out = json.loads(json.dumps(pred.to_dict()))
    assert set(out) >= {"accuracy", "loss", "N", "D", "compute", "ci", "sigmoid", "trusted", "warnings"}
    assert out["compute"] == compute and out["ci"]["loss"][0] <= out["loss"] <= out["ci"]["loss"][1]


def test_noisy_grid_interval_holds_truth_and_given_n_d_target():
    law = placed_law(e=0.9, alpha=0.38, beta=0.3, reducible=0.5)
    sigmoid = Sigmoid(a=0.5, b=0.3, k=-9.0, L0=1.3)
    frame = grid_frame(law, noise=0.01, seed=3, sigmoid=sigmoid, items=1000)
    compute = 10.0 * BUDGETS[-1]
    at_c, at_nd = predict_accuracy(frame, "acc", [{"compute": compute}, {"N": 3e8, "D": 6e9}], n_boot=100)
    lo, hi = at_c.ci["accuracy"]
    assert lo <= true_accuracy(frame, law, compute, sigmoid) <= hi
    assert 0.005 < hi - lo < 0.2  # noise gives the interval a width, but not a useless one
    truth_nd = float(sigmoid(get_law("chinchilla").predict(law, np.array([3e8]), np.array([6e9]))[0]))
    assert at_nd.N == 3e8 and at_nd.D == 6e9 and at_nd.compute is None
    assert at_nd.ci["accuracy"][0] <= truth_nd <= at_nd.ci["accuracy"][1]


def test_sigmoid_fit_alone_recovers_parameters():
    loss = np.linspace(0.8, 1.8, 40)
    truth = Sigmoid(a=0.7, b=0.22, k=-6.0, L0=1.25)
    fit = fit_sigmoid(loss, truth(loss))
    for name, value in truth.to_dict().items():
        assert getattr(fit, name) == pytest.approx(value, rel=1e-5, abs=1e-6), name
    # With the floor given as chance, the other three come back as well.
    fixed = fit_sigmoid(loss, truth(loss), chance=0.22)
    assert fixed.b == 0.22 and fixed.k == pytest.approx(-6.0, rel=1e-5)
    # Huber: a few wild rows (a broken eval) barely move it.
    noisy = truth(loss) + np.random.default_rng(0).normal(0, 0.01, loss.size)
    noisy[[5, 17, 30]] = [0.95, 0.0, 0.99]
    robust = fit_sigmoid(loss, noisy)
    assert robust.L0 == pytest.approx(1.25, abs=0.05) and robust.k == pytest.approx(-6.0, rel=0.25)
    assert robust.a + robust.b <= 1.0 + 1e-12 and robust.k < 0


def test_accuracy_at_chance_gives_no_interval_and_says_why():
    law = placed_law()
    frame = grid_frame(law, noise=0.01, seed=5, sigmoid=Sigmoid(a=0.0, b=0.25, k=-7.0, L0=1.15), items=500)
    pred = fit_two_step(frame, "acc", n_boot=50)
    assert pred.ci["accuracy"] is None and not pred.trusted
    assert any("does not move with task loss" in w for w in pred.warnings)
    assert pred.compute == pytest.approx(10.0 * BUDGETS[-1])  # the default target
    fit = fit_sigmoid(frame["loss"], frame["acc"])
    assert sigmoid_problems(fit, frame["loss"].to_numpy(), frame["acc"].to_numpy())


def test_task_loss_law_not_identified_gives_no_interval():
    # The ladder's sizes all sit on one side of the optimum: the law cannot place N_opt, so no interval.
    law = {"E": 0.8, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.30}
    frame = grid_frame(law, noise=0.01, seed=2, sigmoid=Sigmoid(a=0.6, b=0.25, k=-2.0, L0=3.5), items=500)
    pred = fit_two_step(frame, "acc", {"compute": 1e20}, n_boot=30)
    assert pred.ci["accuracy"] is None and not pred.trusted
    assert any("isoFLOP slice" in w for w in pred.warnings)


def test_three_rows_give_no_prediction_not_an_exception():
    frame = pd.DataFrame(
        {"N": [1e8, 2e8, 4e8], "D": [2e9, 1e9, 5e8], "loss": [1.3, 1.25, 1.28], "acc": [0.3, 0.35, 0.32]}
    )
    pred = fit_two_step(frame, "acc", {"compute": 1e20})
    assert pred.accuracy is None and pred.ci == {"accuracy": None, "loss": None}
    assert not pred.trusted and "too few" in pred.warnings[0]
    json.dumps(pred.to_dict())


def test_checkpoint_rows_fit_the_sigmoid_but_not_the_task_loss_law():
    law = placed_law()
    finals = grid_frame(law).assign(final=True, run=lambda f: np.arange(len(f)))
    # A mid-schedule checkpoint has more loss than a run trained to its D (the law does not hold there),
    # and its accuracy still follows the sigmoid of its loss.
    ckpt = finals.assign(final=False, n_tokens=finals["n_tokens"] / 3.0)
    ckpt["loss"] = 1.05 * get_law("chinchilla").predict(law, ckpt["n_params"], ckpt["n_tokens"])
    ckpt["acc"] = SIGMOID(ckpt["loss"].to_numpy())
    frame = pd.concat([finals, ckpt], ignore_index=True)
    target = {"compute": 10.0 * BUDGETS[-1]}
    pred = fit_two_step(frame, "acc", target, final_column="final", run_column="run", n_boot=30)
    assert pred.law["params"]["alpha"] == pytest.approx(law["alpha"], rel=1e-4)
    assert pred.sigmoid["L0"] == pytest.approx(SIGMOID.L0, rel=1e-4)
    assert pred.accuracy == pytest.approx(true_accuracy(finals, law, target["compute"]), abs=1e-5)
    mixed = fit_two_step(frame.drop(columns="final"), "acc", target, n_boot=0)
    assert abs(mixed.law["params"]["alpha"] - law["alpha"]) > 1e-3  # the checkpoints would bend step 1


def test_resampling_by_run_moves_a_runs_checkpoints_together():
    frame = pd.DataFrame({"run": np.repeat(["r1", "r2", "r3", "r4"], 3)})
    counts = resample_counts(frame, 30, seed=1, run_column="run")
    per_run = counts.reshape(30, 4, 3)
    assert np.all(per_run == per_run[:, :, :1]) and np.all(counts.sum(axis=1) == 12)
    assert len(np.unique(counts, axis=0)) > 1


def test_fit_cli_gives_the_accuracy_and_its_interval(tmp_path, capsys):
    from sweeper.cli import main

    law = placed_law()
    frame = grid_frame(law, noise=0.01, seed=4, items=1000)
    path = tmp_path / "task.csv"
    frame.rename(columns={"n_params": "N", "n_tokens": "D"}).to_csv(path, index=False)
    n, d = 3e8, 3e10
    truth = float(SIGMOID(get_law("chinchilla").predict(law, np.array([n]), np.array([d]))[0]))
    argv = ["fit", str(path), "--accuracy-column", "acc", "--target-n", f"{n}", "--target-d", f"{d}"]
    assert main([*argv, "--format", "json", "--grid", "coarse"]) == 0
    block = json.loads(capsys.readouterr().out)["prediction"]
    lo, hi = block["ci"]["accuracy"]
    assert lo <= truth <= hi and hi - lo < 0.2
    assert block["accuracy"] == pytest.approx(truth, abs=0.05)
    assert block["task"]["sigmoid"]["k"] < 0  # accuracy falls as the task loss rises
    assert main(["fit", str(path), "--accuracy-column", "accuracy"]) == 2  # no such column: named
    assert "--accuracy-column" in capsys.readouterr().err
