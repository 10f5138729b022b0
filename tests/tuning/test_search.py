"""Real Ray Tune + Optuna: ASHA stops poor trials (seen in MLflow), the sampler is seeded."""

import mlflow
import pytest

from sweeper.config.schema import load_config
from sweeper.tuning.search import run_tune, tune_experiment
from sweeper.tuning.trainable import simulate_tune_point


def trial_runs(cfg):
    mlflow.set_tracking_uri(cfg.tracking_uri)
    exp = mlflow.get_experiment_by_name(tune_experiment(cfg))
    return mlflow.search_runs(
        [exp.experiment_id], "tags.`sweeper.role` = 'tune_trial'", output_format="pandas"
    )


def test_asha_stops_poor_trials_early_in_the_trial_records(ray_local, tune_overrides):
    cfg = load_config(
        "tiny",
        **tune_overrides,
        **{
            "tune.sizes": ["tiny-1"],
            "tune.tokens_per_param": 10,
            "tune.n_trials": 8,
            "tune.grace_frac": 0.2,
            "tune.space": {"lr": {"dist": "loguniform", "low": 1e-5, "high": 3e-1}},
        },
    )
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
    assert rung.n_stopped == len(stopped) and rung.best_loss == pytest.approx(
        finished["metrics.val_loss"].min()
    )
    assert rung.near["lr"][0] <= rung.best["lr"] <= rung.near["lr"][1]


def sampled_lrs(cfg, sim_law):
    result = run_tune(
        cfg, trainable=simulate_tune_point, extra_config={"tune_sim": sim_law}, progress=lambda line: None
    )
    runs = trial_runs(cfg)
    runs = runs[runs["tags.sweeper.sweep_id"] == trial_sweep_id(cfg, result)]
    return [round(float(v), 12) for v in runs.sort_values("start_time")["params.search.lr"]]


def trial_sweep_id(cfg, result):
    return mlflow.get_run(result.job_run_id).data.tags["sweeper.sweep_id"]


def test_sampler_is_seeded_and_reproducible(ray_local, tune_overrides, sim_law):
    overrides = {
        **tune_overrides,
        "tune.sizes": ["tiny-1"],
        "tune.n_trials": 5,
        "tune.scheduler": "none",
        "ray.max_concurrent_trials": 1,
        "tune.space": {"lr": {"dist": "loguniform", "low": 1e-4, "high": 1e-1}},
    }
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


class Crash(RuntimeError):
    pass


def crash_after_first_rung(line: str) -> None:
    if line.startswith("rung "):
        raise Crash(line)


def test_a_crashed_tune_job_resumes_with_the_rungs_it_finished(ray_local, tune_overrides, sim_law):
    from mlflow.tracking import MlflowClient

    overrides = {
        **tune_overrides,
        "tune.sizes": ["tiny-1", "tiny-2", "tiny-3"],
        "tune.n_trials": 3,
        "tune.scheduler": "none",
        "tune.space": {"lr": {"dist": "loguniform", "low": 1e-4, "high": 1e-1}},
    }
    cfg = load_config("tiny", **overrides)
    tune_sim = {"tune_sim": sim_law}
    with pytest.raises(Crash):  # the job dies after its first rung
        run_tune(cfg, trainable=simulate_tune_point, extra_config=tune_sim, progress=crash_after_first_rung)
    runs = trial_runs(cfg)
    job_id = runs["tags.sweeper.sweep_id"].iloc[0]
    client = MlflowClient(cfg.tracking_uri)
    first = client.search_runs([runs["experiment_id"].iloc[0]], "tags.`sweeper.role` = 'tune_rung'")[0]
    # ... and another stopped inside its second rung's search: the state that crash leaves in MLflow.
    cut = client.create_run(
        first.info.experiment_id,
        tags={
            "mlflow.parentRunId": first.data.tags["mlflow.parentRunId"],
            "sweeper.role": "tune_rung",
            "sweeper.sweep_id": job_id,
            "sweeper.rung": "tiny-2",
            "sweeper.point_id": "cut-off",
        },
    ).info.run_id
    open_trial = client.create_run(
        first.info.experiment_id,
        tags={"mlflow.parentRunId": cut, "sweeper.role": "tune_trial", "sweeper.sweep_id": job_id},
    ).info.run_id

    result = run_tune(
        load_config("tiny", resume=True, **overrides),
        trainable=simulate_tune_point,
        extra_config=tune_sim,
        progress=lambda line: None,
    )

    assert [r.point["size"] for r in result.rungs] == ["tiny-1", "tiny-2", "tiny-3"]
    assert (
        client.get_run(result.job_run_id).data.tags["sweeper.sweep_id"] == job_id
    )  # the same job, not a new one
    assert client.get_run(result.job_run_id).info.status == "FINISHED"
    runs = trial_runs(cfg)
    runs = runs[runs["tags.sweeper.sweep_id"] == job_id]
    # The finished rung was not searched again; the others were, each once.
    assert runs["tags.sweeper.rung"].value_counts().to_dict() == {"tiny-1": 3, "tiny-2": 3, "tiny-3": 3}
    assert result.rungs[0].best_loss == pytest.approx(float(first.data.metrics["best_loss"]))
    for run_id in (cut, open_trial):  # what the cut-off search left is kept, and marked
        run = client.get_run(run_id)
        assert (run.info.status, run.data.tags["sweeper.status"]) == ("KILLED", "interrupted")
    assert set(result.laws) == {"lr"}


def test_resume_without_a_tune_job_names_the_fix(tune_overrides):
    from sweeper.errors import SweeperInputError

    cfg = load_config(
        "tiny",
        resume=True,
        **{
            **tune_overrides,
            "tune.sizes": ["tiny-1"],
            "tune.space": {"lr": {"dist": "loguniform", "low": 1e-4, "high": 1e-1}},
        },
    )
    with pytest.raises(SweeperInputError, match="no tune job to resume.*run without --resume"):
        run_tune(cfg, progress=lambda line: None)
