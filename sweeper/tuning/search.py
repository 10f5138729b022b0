"""`sweeper tune`: a Ray Tune search per rung (Optuna sampler + ASHA), recorded in MLflow.

MLflow layout: one parent run per tune job (role `tune`) holding the fitted
hyperparameter laws (`hparam_laws.json`, what `recipe: fitted` reads), one run
per rung under it (role `tune_rung`, tag `sweeper.rung`), and one run per trial
under its rung (role `tune_trial`): its sampled values, its curve, and whether
ASHA stopped it (`sweeper.status` = stopped) or it ran to the end.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sweeper.config.schema import SweepConfig
from sweeper.errors import SweeperInputError
from sweeper.plan.trials import PlannedTrial, make_plan, model_specs, select_sizes, trial_at
from sweeper.train.recipes import LAWS_ARTIFACT
from sweeper.tuning.laws import FITTED, RungSummary, fit_hparam_law, summarise_rung


@dataclass(frozen=True, kw_only=True)
class TuneResult:
    job_run_id: str
    experiment_id: str
    tracking_uri: str
    rungs: tuple[RungSummary, ...]
    laws: dict = field(default_factory=dict)  # name -> FitResult
    law_errors: dict = field(default_factory=dict)
    flops_spent: float = 0.0
    flops_without_stopping: float = 0.0  # n_trials x each rung's full cost
    tuned: tuple[str, ...] = ()  # the searched hyperparameters (batch as batch_tokens)

    def to_dict(self) -> dict:
        return {
            "job_run_id": self.job_run_id,
            "experiment_id": self.experiment_id,
            "tracking_uri": self.tracking_uri,
            "flops_spent": self.flops_spent,
            "flops_without_stopping": self.flops_without_stopping,
            "rungs": [r.to_dict() for r in self.rungs],
            "laws": {k: f.to_dict() for k, f in self.laws.items()},
            "law_errors": dict(self.law_errors),
            "tuned": list(self.tuned),
        }


def select_rungs(cfg: SweepConfig) -> list[PlannedTrial]:
    """The points to tune: each size at tokens_per_param x N ("ladder"), or the isoFLOP plan's points."""
    specs = select_sizes(
        model_specs(cfg), cfg.tune.sizes, field="tune.sizes", where="among the sweep's sizes"
    )
    if cfg.tune.rungs == "plan":
        wanted = {s.size for s in specs}
        return [t for t in make_plan(cfg).trials if t.size in wanted]
    rungs = []
    for spec in specs:
        budget = cfg.tune.tokens_per_param * spec.n_params * spec.flops_per_token
        point = trial_at(spec, budget, cfg)
        if point is None:
            raise SweeperInputError(
                "tune.tokens_per_param",
                cfg.tune.tokens_per_param,
                f"{spec.size} cannot train {cfg.tune.tokens_per_param:g} tokens/param within "
                f"budgets.min_steps/min_tokens_per_param; change one or drop the size",
            )
        rungs.append(point)
    return rungs


def check_budget(cfg: SweepConfig, rungs: list[PlannedTrial]) -> float:
    worst = cfg.tune.n_trials * sum(r.flops for r in rungs)
    if worst > cfg.budget * (1 + 1e-9):
        raise SweeperInputError(
            "budget",
            cfg.budget,
            f"{cfg.tune.n_trials} trials on {len(rungs)} rungs need up to "
            f"{worst:.3g} FLOPs (before early stopping); raise --budget, lower tune.n_trials "
            "or tune fewer sizes",
        )
    return worst


def make_sampler(name: str, seed: int, *, n_trials: int = 0, n_startup_trials: int = 0):
    """The Optuna sampler `name`, seeded; a model-based one starts modelling after
    `n_startup_trials` random trials (0: a third of `n_trials`, at least 3)."""
    import inspect

    import optuna

    cls = getattr(optuna.samplers, name, None)
    if not isinstance(cls, type) or not issubclass(cls, optuna.samplers.BaseSampler):
        names = sorted(n for n in dir(optuna.samplers) if n.endswith("Sampler") and n != "BaseSampler")
        raise SweeperInputError("tune.sampler", name, f"use an Optuna sampler: {', '.join(names)}")
    kwargs = {"seed": seed}
    if "n_startup_trials" in inspect.signature(cls.__init__).parameters:
        kwargs["n_startup_trials"] = n_startup_trials or max(3, n_trials // 3)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise SweeperInputError(
            "tune.sampler", name, f"needs more than a seed ({exc}); pick another sampler"
        ) from None


def sampler_for(cfg: SweepConfig, seed: int):
    return make_sampler(
        cfg.tune.sampler, seed, n_trials=cfg.tune.n_trials, n_startup_trials=cfg.tune.n_startup_trials
    )


def asha_milestones(max_t: int, grace: int, reduction_factor: float) -> list[int]:
    """Where Ray's ASHAScheduler (one bracket) compares trials: grace * rf**k below max_t."""
    n = int(math.log(max_t / grace) / math.log(reduction_factor) + 1)
    return [int(grace * reduction_factor**k) for k in range(n) if grace * reduction_factor**k < max_t]


def tune_experiment(cfg: SweepConfig) -> str:
    return cfg.tracking.experiment or f"sweeper-{cfg.space}-tune"


def run_tune(
    cfg: SweepConfig,
    *,
    progress: Callable[[str], None] = print,
    trainable=None,
    extra_config: dict | None = None,
    sweep_id: str | None = None,
) -> TuneResult:
    """Tune every selected rung, fit the hyperparameter laws, log everything to MLflow.

    `trainable` replaces the real one (tests and benchmarks pass the labelled
    simulated one, with its law in `extra_config`). With `cfg.resume` the latest
    tune job (or `sweep_id`) goes on: see open_tune_job.
    """
    import ray

    from sweeper.sweep.execution import ensure_ray

    if trainable is None and cfg.trainable == "simulated":
        from sweeper.tuning.trainable import SIM_DEFAULTS, simulate_tune_point

        trainable = simulate_tune_point
        extra_config = {
            "tune_sim": {**SIM_DEFAULTS, **cfg.simulation.params, "noise": cfg.simulation.noise},
            **(extra_config or {}),
        }
    if not cfg.tune.space:
        raise SweeperInputError(
            "tune.space",
            {},
            "declare at least one dimension, e.g. lr: {dist: loguniform, low: 1e-4, high: 1e-2}",
        )
    rungs = select_rungs(cfg)
    worst = check_budget(cfg, rungs)
    sampler_for(cfg, cfg.seed)  # fail on a bad name before anything starts
    simulated = trainable is not None
    # A new job has rungs to tune: Ray starts (and refuses requests it can never grant) before MLflow is
    # written.
    started = False if cfg.resume else ensure_ray(cfg, simulated=simulated)
    try:
        return _run_tune(
            cfg,
            rungs,
            worst,
            progress=progress,
            trainable=trainable,
            extra_config=extra_config,
            sweep_id=sweep_id,
            started=started,
        )
    finally:
        if started:
            ray.shutdown()


def _run_tune(
    cfg: SweepConfig, rungs, worst: float, *, progress, trainable, extra_config, sweep_id, started: bool
) -> TuneResult:
    import ray

    from sweeper.sweep.execution import ensure_ray
    from sweeper.tracking.mlflow_runs import client_for, ensure_experiment

    client = client_for(cfg.tracking_uri)
    experiment_id = ensure_experiment(client, tune_experiment(cfg), cfg.tracking_uri)
    job, job_id, finished = open_tune_job(
        client, experiment_id, cfg, sweep_id, source="simulated" if trainable is not None else "trained"
    )
    progress(
        f"tune job {job_id}: {len(rungs)} rungs x {cfg.tune.n_trials} trials, {cfg.tune.sampler} + "
        f"{cfg.tune.scheduler}; {sum(r.point_id in finished for r in rungs)} rungs already tuned; "
        f"MLflow {cfg.tracking_uri} run {job}"
    )
    # On --resume Ray starts only if a rung is left; the Ray the caller started is the caller's to stop.
    left = any(r.point_id not in finished for r in rungs)
    own = not started and left and ensure_ray(cfg, simulated=trainable is not None)
    summaries = []
    try:
        for i, point in enumerate(rungs):
            if point.point_id in finished:
                summaries.append(finished[point.point_id])
                continue
            # Seeded by the rung's place, so a resumed job searches a rung as the first attempt would.
            summaries.append(
                tune_rung(
                    cfg,
                    point,
                    client=client,
                    experiment_id=experiment_id,
                    job_run=job,
                    job_id=job_id,
                    seed=cfg.seed + i,
                    trainable=trainable,
                    extra_config=extra_config,
                )
            )
            s = summaries[-1]
            progress(
                f"rung {point.point_id}: {s.n_trials} trials ({s.n_stopped} stopped early), best val_loss "
                f"{s.best_loss:.4f} at "
                + ", ".join(f"{k}={v:.3g}" for k, v in s.best.items() if k in _tuned(cfg))
            )
    finally:
        if own:
            ray.shutdown()
    laws, errors = fit_laws(cfg, summaries)
    result = TuneResult(
        job_run_id=job,
        experiment_id=experiment_id,
        tracking_uri=cfg.tracking_uri,
        rungs=tuple(summaries),
        laws=laws,
        law_errors=errors,
        flops_spent=sum(s.flops_spent for s in summaries),
        flops_without_stopping=worst,
        tuned=tuple(sorted(_tuned(cfg))),
    )
    log_job(client, job, result, cfg)
    return result


def open_tune_job(
    client, experiment_id: str, cfg: SweepConfig, sweep_id: str | None, *, source: str
) -> tuple[str, str, dict[str, RungSummary]]:
    """(job run id, job id, finished rungs by point id): a new job, or with `cfg.resume` the latest
    tune job of the experiment (or `sweep_id`) and the rungs it finished.

    A rung resumes whole: its search is one Optuna study, and a study cut off mid-way
    would not propose what an uninterrupted one would. A rung run that did not finish
    (the job stopped inside its search) is marked KILLED, its trial records kept, and
    the rung is searched again.
    """
    from sweeper.tracking.mlflow_runs import (
        ROLE,
        find_sweep_run,
        load_json_artifact,
        new_sweep_id,
        start_sweep_run,
    )

    if not cfg.resume:
        job_id = sweep_id or new_sweep_id()
        job = start_sweep_run(
            client,
            experiment_id,
            sweep_id=job_id,
            config=cfg.to_dict(),
            tags={
                ROLE: "tune",
                "sweeper.space": cfg.space,
                "sweeper.sampler": cfg.tune.sampler,
                "source": source,
            },
        )
        return job, job_id, {}
    run = find_sweep_run(client, experiment_id, sweep_id, role="tune")
    if run is None:
        raise SweeperInputError(
            "resume",
            sweep_id or True,
            f"no tune job to resume in experiment '{tune_experiment(cfg)}'; run without --resume",
        )
    job_id = run.data.tags["sweeper.sweep_id"]
    client.update_run(run.info.run_id, status="RUNNING")
    finished: dict[str, RungSummary] = {}
    query = f"tags.`{ROLE}` = 'tune_rung' and tags.`sweeper.sweep_id` = '{job_id}'"
    for rung in client.search_runs([experiment_id], query, max_results=10_000):
        summary = (
            load_json_artifact(client, rung.info.run_id, "rung.json")
            if rung.info.status == "FINISHED"
            else None
        )
        if summary is not None:
            finished[rung.data.tags["sweeper.point_id"]] = RungSummary.from_dict(summary)
        else:
            mark_interrupted(client, experiment_id, rung.info.run_id)
    return run.info.run_id, job_id, finished


def mark_interrupted(client, experiment_id: str, rung_run: str) -> None:
    """KILLED, with `sweeper.status` interrupted: a rung run and its trial runs still open."""
    query = f"tags.`mlflow.parentRunId` = '{rung_run}' and attributes.status = 'RUNNING'"
    for run_id in [
        rung_run,
        *(r.info.run_id for r in client.search_runs([experiment_id], query, max_results=10_000)),
    ]:
        client.set_tag(run_id, "sweeper.status", "interrupted")
        client.set_terminated(run_id, "KILLED")


def _tuned(cfg: SweepConfig) -> set[str]:
    names = {n.replace(".", "_") for n in cfg.tune.space}
    if "batch_size" in names:
        names.add("batch_tokens")
    return names


def fit_laws(cfg: SweepConfig, summaries: list[RungSummary]) -> tuple[dict, dict]:
    laws, errors = {}, {}
    for name in FITTED:
        if name not in _tuned(cfg):
            continue  # a value nobody searched over has no optimum to fit
        try:
            laws[name] = fit_hparam_law(
                name,
                summaries,
                scale_with=cfg.tune.scale_with,
                n_bootstrap=cfg.fit.n_bootstrap,
                seed=cfg.seed,
            )
        except SweeperInputError as exc:
            errors[name] = str(exc)
    return laws, errors


def log_job(client, job: str, result: TuneResult, cfg: SweepConfig) -> None:
    payload = {
        "scale_with": cfg.tune.scale_with,
        "laws": {k: f.to_dict() for k, f in result.laws.items()},
        "law_errors": result.law_errors,
        "rungs": [r.to_dict() for r in result.rungs],
    }
    client.log_text(job, json.dumps(payload, indent=2, default=float), LAWS_ARTIFACT)
    client.log_metric(job, "flops_spent", result.flops_spent)
    client.log_metric(job, "flops_without_stopping", result.flops_without_stopping)
    for name, fit in result.laws.items():
        for key, value in {**fit.params, **fit.derived}.items():
            client.log_metric(job, f"law.{name}.{key}", float(value))
        for key, (lo, hi) in fit.ci.items():
            client.log_metric(job, f"law.{name}.{key}.ci_lo", lo)
            client.log_metric(job, f"law.{name}.{key}.ci_hi", hi)
    client.set_terminated(job, "FINISHED")


def tune_rung(
    cfg: SweepConfig,
    point: PlannedTrial,
    *,
    client,
    experiment_id: str,
    job_run: str,
    job_id: str,
    seed: int,
    trainable=None,
    extra_config: dict | None = None,
) -> RungSummary:
    """One Tuner over one rung: OptunaSearch proposes, ASHA stops, TuneRecorder writes MLflow."""
    from ray import tune
    from ray.tune import PlacementGroupFactory
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    from sweeper.config.tune_space import search_space
    from sweeper.plan.resources import trial_request
    from sweeper.sweep.execution import trial_dirname
    from sweeper.trial.spec import trial_config
    from sweeper.tuning.recorder import TuneRecorder
    from sweeper.tuning.trainable import tune_point

    rung_run = client.create_run(
        experiment_id,
        run_name=f"rung-{point.size}",
        tags={
            "mlflow.parentRunId": job_run,
            "sweeper.role": "tune_rung",
            "sweeper.sweep_id": job_id,
            "sweeper.rung": point.size,
            "sweeper.point_id": point.point_id,
        },
    ).info.run_id
    base = {
        **trial_config(cfg),
        **(extra_config or {}),
        "point": point.to_dict(),
        "search": search_space(cfg.tune),
        "rung": point.size,
    }
    if trainable is not None:
        base["source"] = "simulated"
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line per rung
    searcher = OptunaSearch(sampler=sampler_for(cfg, seed), metric="val_loss", mode="min")
    max_t = point.n_tokens if cfg.tune.time_attr == "tokens" else point.steps
    grace = max(1, int(cfg.tune.grace_frac * max_t))
    scheduler = (
        FIFOScheduler()
        if cfg.tune.scheduler == "none"
        else ASHAScheduler(
            time_attr=cfg.tune.time_attr,
            metric="val_loss",
            mode="min",
            max_t=max_t,
            grace_period=grace,
            reduction_factor=cfg.tune.reduction_factor,
        )
    )
    if cfg.tune.scheduler == "asha" and cfg.tune.cooled_decisions:
        base["cooled_eval_at"] = {
            cfg.tune.time_attr: asha_milestones(max_t, grace, cfg.tune.reduction_factor)
        }
    recorder = TuneRecorder(
        tracking_uri=cfg.tracking_uri, experiment_id=experiment_id, parent_run_id=rung_run, sweep_id=job_id
    )
    function, simulated = trainable or tune_point, trainable is not None
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    tuner = tune.Tuner(
        tune.with_resources(
            function, PlacementGroupFactory([trial_request(cfg, simulated=simulated).bundle()])
        ),
        param_space=base,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=cfg.tune.n_trials,
            max_concurrent_trials=cfg.ray.max_concurrent_trials,
            reuse_actors=True,
            trial_dirname_creator=trial_dirname,
            trial_name_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            storage_path=cfg.ray.storage_path or str(Path(".sweeper/ray_results").resolve()),
            # per rung run: a rung searched again after a crash gets a fresh folder
            name=f"tune-{job_id}-{point.size}-{rung_run[:8]}",
            callbacks=[recorder],
            verbose=0,
        ),
    )
    tuner.fit()
    summary = summarise_rung(point.to_dict(), recorder.trials(), cfg.tune.near_optimal)
    client.log_text(rung_run, json.dumps(summary.to_dict(), indent=2, default=float), "rung.json")
    metrics = {
        "best_loss": summary.best_loss,
        "flops_spent": summary.flops_spent,
        "n_stopped": summary.n_stopped,
        **{f"best.{k}": v for k, v in summary.best.items()},
    }
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and math.isfinite(value):
            client.log_metric(rung_run, key, float(value))
    client.set_terminated(rung_run, "FINISHED")
    return summary
