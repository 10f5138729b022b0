"""Real Ray Tune + Optuna: ASHA stops poor trials (seen in MLflow), the sampler is seeded."""

import mlflow
import pytest

from sweeper.config import load_config
from sweeper.tuning.search import run_tune, tune_experiment
from sweeper.tuning.trainable import simulate_tune_point


def trial_runs(cfg):
    mlflow.set_tracking_uri(cfg.tracking_uri)
    exp = mlflow.get_experiment_by_name(tune_experiment(cfg))
    return mlflow.search_runs([exp.experiment_id], "tags.`sweeper.role` = 'tune_trial'", output_format="pandas")


def test_asha_stops_poor_trials_early_in_the_trial_records(ray_local, tune_overrides):
    cfg = load_config("tiny", **tune_overrides, **{
        "tune.sizes": ["tiny-1"], "tune.tokens_per_param": 10, "tune.n_trials": 8, "tune.grace_frac": 0.2,
        "tune.space": {"lr": {"dist": "loguniform", "low": 1e-5, "high": 3e-1}}})
    result = run_tune(cfg, progress=lambda line: None)
    runs = trial_runs(cfg)
    assert len(runs) == 8
    assert set(runs["tags.sweeper.rung"]) == {"tiny-1"}
    stopped = runs[runs["tags.sweeper.status"] == "stopped"]
    finished = runs[runs["tags.sweeper.status"] == "ok"]
    assert len(stopped) >= 1 and len(finished) >= 1
    n_tokens = result.rungs[0].point["n_tokens"]
    assert (stopped["metrics.tokens"] < n_tokens).all()  # stopped before their rung's tokens
    assert (finished["metrics.tokens"] >= n_tokens).all()
    assert result.flops_spent < result.flops_without_stopping
    rung = result.rungs[0]
    assert rung.n_stopped == len(stopped) and rung.best_loss == pytest.approx(finished["metrics.val_loss"].min())
    assert rung.near["lr"][0] <= rung.best["lr"] <= rung.near["lr"][1]


def sampled_lrs(cfg, sim_law):
    result = run_tune(cfg, trainable=simulate_tune_point, extra_config={"tune_sim": sim_law}, progress=lambda line: None)
    runs = trial_runs(cfg)
    runs = runs[runs["tags.sweeper.sweep_id"] == trial_sweep_id(cfg, result)]
    return [round(float(v), 12) for v in runs.sort_values("start_time")["params.search.lr"]]


def trial_sweep_id(cfg, result):
    return mlflow.get_run(result.job_run_id).data.tags["sweeper.sweep_id"]


def test_sampler_is_seeded_and_reproducible(ray_local, tune_overrides, sim_law):
    overrides = {**tune_overrides, "tune.sizes": ["tiny-1"], "tune.n_trials": 5, "tune.scheduler": "none",
                 "tune.max_concurrent_trials": 1, "tune.space": {"lr": {"dist": "loguniform", "low": 1e-4, "high": 1e-1}}}
    first = sampled_lrs(load_config("tiny", **overrides), sim_law)
    again = sampled_lrs(load_config("tiny", **overrides), sim_law)
    other = sampled_lrs(load_config("tiny", seed=1, **overrides), sim_law)
    assert len(first) == 5 and first == again
    assert other != first


def test_a_sampler_is_chosen_by_name(tune_overrides):
    from sweeper.errors import SweeperInputError
    from sweeper.tuning.search import make_sampler

    assert type(make_sampler("RandomSampler", 0)).__name__ == "RandomSampler"
    # A model-based sampler models after a third of the trials (Optuna's own default, 10, would
    # leave a 10-trial TPE search purely random); an explicit setting wins.
    assert make_sampler("TPESampler", 0, n_trials=12)._n_startup_trials == 4
    assert make_sampler("TPESampler", 0, n_trials=12, n_startup_trials=7)._n_startup_trials == 7
    with pytest.raises(SweeperInputError, match="tune.sampler"):
        make_sampler("NoSuchSampler", 0)
