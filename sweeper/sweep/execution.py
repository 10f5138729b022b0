"""Running a planned sweep: MLflow parent run, Ray Tune trials, final fit.

Split from api.py so that importing the public API (and validating a config)
does not import Ray or MLflow.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import ray
from mlflow.entities import Metric
from ray import tune
from ray.tune import PlacementGroupFactory

from models.registry import get_model_spec
from sweeper.config.redaction import redact_uri
from sweeper.config.schema import SweepConfig, sweep_law
from sweeper.errors import SweeperInputError
from sweeper.fit import fit_law
from sweeper.fit.prediction import predict
from sweeper.fit.two_step import TaskPrediction, predict_tasks
from sweeper.library_logs import quiet_tune_defaults
from sweeper.plan.resources import check_feasible, cluster_nodes, requests_for, trial_request
from sweeper.plan.trials import Plan, PlannedTrial, plan_cooldown
from sweeper.report.progress import ProgressPrinter
from sweeper.report.summary import sweep_description
from sweeper.samplers.candidates import initial_design
from sweeper.samplers.frontier import FrontierSampler
from sweeper.samplers.searcher import PointSearcher
from sweeper.sweep.in_process import run_in_process, runs_in_process
from sweeper.sweep.interruption import Interruption
from sweeper.sweep.ledger import STOPPING_CI_WIDENING, SweepLedger, stop_rule, widened_for_stopping
from sweeper.sweep.session import SessionCallback, SweepSession, sweep_session
from sweeper.sweep.stopping import ConvergenceStopper
from sweeper.tracking.mlflow_runs import (
    FINISHED,
    TrialRecorder,
    client_for,
    ensure_experiment,
    find_sweep_run,
    new_sweep_id,
    set_description,
    start_sweep_run,
    stopped_checkpoints,
    trial_runs_by_point,
)
from sweeper.tracking.run_table import RunTable, SweepResult
from sweeper.train.branch_costs import shared_warmups
from sweeper.trial.faults import NO_HARNESS, Harness
from sweeper.trial.simulated import simulate_point
from sweeper.trial.spec import TrialSpec, trial_config
from sweeper.trial.trainable import is_distributed, train_point


def ensure_ray(cfg: SweepConfig, *, simulated: bool | None = None) -> bool:
    """Connect to the configured cluster, or start a local Ray; True if we started it.

    Then check that the cluster can ever grant what the trials will ask for (Ray would wait for
    ever): a SweeperInputError naming the key and the fix, with our Ray shut down again.
    """
    started = not ray.is_initialized()
    if started and cfg.ray.address:
        ray.init(address=cfg.ray.address, log_to_driver=False)
    elif started:
        # Local Ray: no dashboard unless asked for, and then on loopback unless configured.
        ray.init(
            include_dashboard=cfg.ray.dashboard, dashboard_host=cfg.ray.dashboard_host, log_to_driver=False
        )
    try:
        check_feasible(requests_for(cfg, simulated=simulated), cluster_nodes())
    except SweeperInputError:
        if started:
            ray.shutdown()
        raise
    return started


def open_sweep(client, experiment_id: str, cfg: SweepConfig, plan: Plan, sweep_id: str | None):
    """The parent run: a new one, or with --resume the existing one and its finished points."""
    if cfg.resume:
        run = find_sweep_run(client, experiment_id, sweep_id)
        if run is None:
            raise SweeperInputError(
                "resume",
                sweep_id or True,
                f"no sweep to resume in experiment '{cfg.experiment_name}'; run without --resume",
            )
        sweep_id = run.data.tags["sweeper.sweep_id"]
        client.update_run(run.info.run_id, status="RUNNING")
        return run.info.run_id, sweep_id, trial_runs_by_point(client, experiment_id, sweep_id)
    sweep_id = sweep_id or new_sweep_id()
    tags = {
        "sweeper.space": cfg.space,
        "sweeper.design": cfg.design,
        "source": "simulated" if cfg.trainable == "simulated" else "trained",
    }
    parent = start_sweep_run(client, experiment_id, sweep_id=sweep_id, config=cfg.to_dict(), tags=tags)
    client.log_text(
        parent, cfg.to_yaml(), "config.yaml"
    )  # the resolved space: `sweeper run config.yaml` reruns it
    set_description(client, parent, describe(cfg))
    client.log_text(parent, format_plan_json(plan), "plan.json")
    return parent, sweep_id, {}


def describe(cfg: SweepConfig, **finished) -> str:
    """The parent run's MLflow description: while running, and (with stop_reason, fit, ...) at the end."""
    return sweep_description(
        space=cfg.space,
        design=cfg.design,
        trainable=cfg.trainable,
        budget=cfg.budget,
        kind=cfg.model.kind,
        target=cfg.fit.target,
        **finished,
    )


def format_plan_json(plan: Plan) -> str:
    return json.dumps(
        {"slices": plan.slices, "budget": plan.budget, "trials": [t.to_dict() for t in plan.trials]}, indent=2
    )


def make_searcher(
    cfg: SweepConfig,
    plan: Plan,
    candidates,
    base: dict,
    finished: dict[str, float],
    session: SweepSession,
    resume_from: dict[str, str] | None = None,
):
    """The adaptive design: FrontierSampler proposals through a thin Tune Searcher, which commits
    compute through the session. A proposed point in `resume_from` continues from that checkpoint
    (an interrupted sweep)."""
    branch = plan_cooldown(cfg)
    extra = {}
    if cfg.fit.target_compute:  # the sampler watches the prediction where the stopper does
        extra["extrapolate"] = cfg.fit.target_compute / max(p.budget for p in candidates)
    if "log_L_opt" in cfg.fit.watch:  # the stopper waits for the prediction: aim at its targets
        extra["limit"] = session.ledger.rule.limit
    sampler = FrontierSampler(
        candidates=candidates,
        initial=initial_design(plan, candidates),
        law=cfg.fit.law,
        # the sampler aims at the law's quantities; a watched task follows its task loss, which the
        # same points inform, so the exponents stand in for it
        watch=tuple(w for w in cfg.fit.watch if not w.startswith("task.")) or ("a", "b"),
        seed=cfg.seed,
        cooldown_frac=branch,
        latest_fit=session.ledger.latest_fit,
        **extra,
    )
    return PointSearcher(
        sampler=sampler,
        candidates=candidates,
        base_config=base,
        budget=session,
        finished=finished,
        cooldown_frac=branch,
        resume_from=resume_from,
    ), len(candidates)


def branching_config(cfg: SweepConfig, trials) -> dict | None:
    """What a trial needs to branch: the snapshot store and each size's shared warmup."""
    if plan_cooldown(cfg) is None:
        return None
    store = cfg.training.branch_store or str(Path(".sweeper/stable").resolve())
    return {"store": store, "warmup_steps": shared_warmups(trials, cfg.training.warmup_frac)}


def trial_dirname(trial) -> str:
    """Short, readable trial directories: the point id, not the whole config."""
    point = trial.config.get("point")  # a grid trial's point may still be Tune's unresolved grid_search
    name = point.get("point_id", "trial") if isinstance(point, dict) else "trial"
    return f"{trial.trial_id}-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def trial_resources(cfg: SweepConfig, config: dict) -> PlacementGroupFactory:
    """A distributed trial only coordinates: its TorchTrainer reserves the workers through ScalingConfig."""
    trial = TrialSpec.of(config)
    point = trial.point
    distributed = (
        cfg.trainable == "torch"
        and bool(point)
        and is_distributed(trial, get_model_spec(point["kind"], point["size"]))
    )
    return PlacementGroupFactory([trial_request(cfg, distributed=distributed).bundle()])


def run_trials(
    cfg: SweepConfig,
    base: dict,
    todo: list[PlannedTrial],
    callbacks: list,
    stopper,
    searcher=None,
    resume_from: dict[str, str] | None = None,
) -> None:
    """The trials through Ray Tune; a point in `resume_from` (point_id -> checkpoint of a stopped trial)
    continues from that checkpoint."""
    function = simulate_point if cfg.trainable == "simulated" else train_point
    trainable = tune.with_resources(function, lambda config: trial_resources(cfg, config))
    if searcher is None:
        points = [
            {
                **t.to_dict(),
                **({"checkpoint": resume_from[t.point_id]} if t.point_id in (resume_from or {}) else {}),
            }
            for t in todo
        ]
        param_space, num_samples = {**base, "point": tune.grid_search(points)}, 1
    else:
        param_space, num_samples = {}, searcher[1]
    storage = cfg.ray.storage_path or str(Path(".sweeper/ray_results").resolve())
    quiet_tune_defaults()  # no CSV/JSON/TensorBoard files or lines per trial; progress is ours to print
    # Short trials checkpoint often, and each checkpoint forces a (cheap, ~10 ms) experiment
    # snapshot with num_to_keep set; Tune's warning about it is noise on every tiny sweep.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # TensorBoard cannot log a tuple hyperparameter (the mixture) and says so at INFO once per trial.
    logging.getLogger("ray.tune.logger.tensorboardx").setLevel(logging.WARNING)
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            max_concurrent_trials=cfg.ray.max_concurrent_trials,
            reuse_actors=True,
            trial_dirname_creator=trial_dirname,
            trial_name_creator=trial_dirname,
            search_alg=searcher[0] if searcher else None,
            num_samples=num_samples,
        ),
        run_config=tune.RunConfig(
            storage_path=storage,
            callbacks=callbacks,
            stop=stopper,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=cfg.ray.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )
    tuner.fit()


def fit_runs(table: RunTable, cfg: SweepConfig):
    """The law fitted to the finished runs, or None (with why) when there are too few to fit."""
    try:
        return fit_law(
            table.ok().frame,
            law=cfg.fit.law,
            target=cfg.fit.target,
            n_bootstrap=cfg.fit.n_bootstrap,
            seed=cfg.seed,
            target_compute=cfg.fit.target_compute,
        ), ""
    except SweeperInputError as exc:
        return None, str(exc)


def predict_runs(table: RunTable, cfg: SweepConfig, fit) -> tuple[object, str]:
    """The sweep's prediction (sweeper.fit.prediction) at fit.target_n/target_d, else at fit.target_compute,
    else at 10x the largest slice, or None without a fit to vouch for it; and why there is none."""
    if fit is None or fit.law != "chinchilla":
        return None, ""
    target = cfg.fit
    try:
        return predict(
            table.ok().frame,
            target_compute=None if target.target_n else target.target_compute,
            target_n=target.target_n,
            target_d=target.target_d,
            target=target.target,
            n_bootstrap=target.n_bootstrap,
            seed=cfg.seed,
            identified=fit.identified,
            identification_warnings=fit.warnings,
        ), ""
    except Exception as exc:  # noqa: BLE001 - the trials are recorded; a failed prediction says why, once
        return None, f"{type(exc).__name__}: {exc}"


def log_refit(client, parent: str, refit, index: int) -> None:
    now = int(time.time() * 1000)
    metrics = [
        Metric("refit.flops_spent", refit.flops_spent, now, index),
        Metric("refit.n_runs", refit.n_runs, now, index),
    ]
    metrics += [
        Metric(f"refit.ci_halfwidth.{k}", v, now, index)
        for k, v in refit.halfwidths.items()
        if math.isfinite(v)
    ]
    metrics += [
        Metric(f"refit.{k}", float(v), now, index)
        for k, v in {**refit.fit.params, **refit.fit.derived}.items()
        if isinstance(v, (int, float)) and math.isfinite(v)
    ]
    client.log_batch(parent, metrics=metrics)


def run_sweep(
    cfg: SweepConfig,
    plan: Plan,
    *,
    sweep_id: str | None,
    progress: Callable[[str], None],
    harness: Harness = NO_HARNESS,
) -> SweepResult:

    # A new sweep that needs Ray starts it (and Ray refuses requests it can never grant) before
    # the MLflow parent run exists, so a bad `ray:` section leaves nothing behind. A simulated
    # sweep runs in this process and needs no Ray at all.
    started = False if cfg.resume or runs_in_process(cfg, harness) else ensure_ray(cfg)
    try:
        return _run_sweep(cfg, plan, sweep_id=sweep_id, progress=progress, harness=harness)
    finally:
        if started:
            ray.shutdown()


def _run_sweep(
    cfg: SweepConfig, plan: Plan, *, sweep_id: str | None, progress: Callable[[str], None], harness: Harness
) -> SweepResult:

    cfg, law_note = sweep_law(cfg)
    client = client_for(cfg.tracking_uri)
    experiment_id = ensure_experiment(client, cfg.experiment_name, cfg.tracking_uri)
    parent, sweep_id, existing = open_sweep(client, experiment_id, cfg, plan, sweep_id)
    if law_note:
        progress(f"NOTE: {law_note}")
        client.set_tag(parent, "sweeper.law_fallback", law_note)
    before = RunTable.from_mlflow(
        experiment=cfg.experiment_name, tracking_uri=cfg.tracking_uri, sweep_id=sweep_id
    )
    refits_before = len(client.get_metric_history(parent, "refit.n_runs"))
    finished = before.frame[before.frame["status"].isin(FINISHED)]
    adaptive = cfg.design == "adaptive"
    rule = stop_rule(
        cfg,
        adaptive=adaptive,
        on_convergence=adaptive,
        ci_widening=STOPPING_CI_WIDENING if adaptive else 1.0,
    )
    ledger = SweepLedger.resumed(rule, finished)
    todo = [t for t in plan.trials if existing.get(t.point_id, ("", ""))[1] not in FINISHED]
    progress(
        f"sweep {sweep_id} ({cfg.design} design): {len(finished)} trials already done; "
        f"MLflow {redact_uri(cfg.tracking_uri)} experiment '{cfg.experiment_name}'"
    )
    if plan.repetition_warning:  # said once, and kept on the parent run
        progress(f"WARNING: {plan.repetition_warning}")
        client.set_tag(parent, "sweeper.data_warning", plan.repetition_warning[:5000])
    base = trial_config(cfg, harness)
    base["faults"]["marker_dir"] = str(Path(".sweeper/faults", sweep_id).resolve())
    searcher, adaptive_candidates = None, None
    if adaptive:
        from sweeper.samplers.candidates import candidate_points

        adaptive_candidates = candidate_points(cfg, plan)
    base["branching"] = branching_config(
        cfg, plan.trials if adaptive_candidates is None else adaptive_candidates
    )
    resume_from = stopped_checkpoints(client, experiment_id, sweep_id) if cfg.resume else {}
    session = sweep_session(
        ledger,
        cfg,
        printer=ProgressPrinter(
            0 if adaptive else len(todo), cfg.budget, progress, target_ci=cfg.fit.target_ci
        ),
        warn=progress,
        # a resumed sweep numbers its refits after the ones already logged
        log_refit=lambda refit, i: log_refit(client, parent, refit, i + refits_before),
    )
    if adaptive:
        ok = before.ok().frame
        searcher = make_searcher(
            cfg, plan, adaptive_candidates, base, dict(zip(ok["point_id"], ok["loss"])), session, resume_from
        )
    recorder = TrialRecorder(
        tracking_uri=cfg.tracking_uri,
        experiment_id=experiment_id,
        parent_run_id=parent,
        sweep_id=sweep_id,
        design=cfg.design,
        existing=existing,
    )
    in_process = runs_in_process(cfg, harness)
    interruption = Interruption(tune_loop=not in_process)
    if adaptive or todo:
        with interruption:
            if in_process:
                run_in_process(
                    base,
                    todo,
                    session,
                    recorder,
                    searcher and searcher[0],
                    interrupted=lambda: interruption.requested,
                )
            else:
                started = ensure_ray(cfg)
                try:
                    run_trials(
                        cfg,
                        base,
                        todo,
                        [recorder, SessionCallback(session)],
                        ConvergenceStopper(ledger),
                        searcher,
                        resume_from=resume_from,
                    )
                finally:
                    if started:
                        ray.shutdown()
            recorder.sweep_ended()  # trials cut short (stop rule or interruption) are recorded as stopped
    flush_outbox(recorder, cfg, progress)
    if interruption.requested:
        return end_interrupted(
            client,
            cfg,
            experiment_id,
            parent,
            sweep_id,
            interruption.signal,
            planned=None if adaptive else len(plan.trials),
        )
    return finish_sweep(
        client,
        cfg,
        experiment_id,
        parent,
        sweep_id,
        stop_reason=ledger.outcome(adaptive),
        converged=adaptive and ledger.converged(),
    )


def flush_outbox(recorder: TrialRecorder, cfg: SweepConfig, progress: Callable[[str], None]) -> None:
    """Every trial result reaches MLflow before the final fit reads it back."""
    if recorder.outbox.drain():
        return
    progress(
        f"MLflow unreachable; {len(recorder.outbox.pending)} writes wait in {recorder.outbox.path}; "
        f"retrying for up to {cfg.tracking.outage_timeout_s:.0f} s"
    )
    if not recorder.outbox.drain_until(cfg.tracking.outage_timeout_s):
        raise SweeperInputError(
            "tracking.uri",
            redact_uri(cfg.tracking_uri),
            f"unreachable; the results are safe in {recorder.outbox.path}: "
            "run the same command with --resume once MLflow is back",
        )


def finish_sweep(
    client,
    cfg: SweepConfig,
    experiment_id: str,
    parent: str,
    sweep_id: str,
    *,
    stop_reason: str,
    converged: bool,
) -> SweepResult:
    table = RunTable.from_mlflow(
        experiment=cfg.experiment_name, tracking_uri=cfg.tracking_uri, sweep_id=sweep_id
    )
    fit, why = fit_runs(table, cfg)
    if converged:  # the same runs the stop decision rested on: the same widening (sweeper.sweep.ledger)
        fit = widened_for_stopping(fit)
    prediction, no_prediction = predict_runs(table, cfg, fit)
    tasks = predict_task_runs(table, cfg)
    client.set_tag(parent, "sweeper.stop_reason", stop_reason)
    set_description(
        client,
        parent,
        describe(
            cfg,
            stop_reason=stop_reason,
            fit=fit,
            n_trials=len(table),
            flops=table.total_flops,
            prediction=prediction,
        ),
    )
    with tempfile.TemporaryDirectory(prefix="sweeper-") as tmp:
        table.to_csv(Path(tmp) / "runs.csv")
        client.log_artifact(parent, str(Path(tmp) / "runs.csv"))
    if fit is not None:
        client.log_dict(parent, fit.to_dict(), "fit.json")
        client.set_tag(parent, "sweeper.fit_identified", str(fit.identified).lower())
        if fit.warnings:
            client.set_tag(parent, "sweeper.fit_warnings", "; ".join(fit.warnings)[:5000])
        # params and exponents as metrics: sortable and chartable across sweeps in the runs table (only what
        # the fit identifies: an unidentified value there would be compared as if it were a result)
        values = {**fit.params, **{k: fit.derived[k] for k in ("a", "b") if k in fit.derived}}
        values = {k: v for k, v in values.items() if fit.trusted(k)}
        client.log_batch(
            parent,
            metrics=[
                Metric(f"fit.{k}", float(v), int(time.time() * 1000), 0)
                for k, v in values.items()
                if math.isfinite(float(v))
            ],
        )
    else:
        client.set_tag(parent, "sweeper.fit_error", why[:500])
    if prediction is not None:
        log_prediction(client, parent, prediction)
    elif no_prediction:
        client.set_tag(parent, "sweeper.prediction_error", no_prediction[:500])
    if tasks:
        log_task_predictions(client, parent, tasks)
    per_target = target_fits(table, cfg)
    for target, target_fit in per_target.items():
        client.log_dict(parent, target_fit.to_dict(), f"fits/{target}.json")
    try:  # plots and the HTML report are for people: a plotting error must not fail the sweep
        from sweeper.report.sweep_report import log_report_artifacts

        log_report_artifacts(
            client,
            parent,
            table,
            fit,
            None,
            target_ci=cfg.fit.target_ci,
            seed=cfg.seed,
            target_compute=cfg.fit.target_compute,
            prediction=prediction,
            task_predictions=tasks,
        )
    except Exception as exc:  # noqa: BLE001
        client.set_tag(parent, "sweeper.report_error", f"{type(exc).__name__}: {exc}"[:500])
    client.log_metric(parent, "total_flops", table.total_flops)
    client.set_terminated(parent, "FINISHED")
    return sweep_result(
        cfg,
        experiment_id,
        parent,
        sweep_id,
        table,
        fit=fit,
        converged=converged,
        stop_reason=stop_reason,
        fits_per_target=per_target,
        fit_error=why,
        prediction=prediction,
        prediction_error=no_prediction,
        task_predictions=tasks,
    )


def predict_task_runs(table: RunTable, cfg: SweepConfig) -> dict:
    """Each scored task's two-step accuracy prediction (sweeper.fit.two_step) at the sweep's target:
    fit.target_n/target_d, else fit.target_compute, else 10x the largest slice."""
    frame = table.ok().frame
    if not any(c.startswith("task.") for c in frame.columns):
        return {}
    target = cfg.fit
    if target.target_n:
        where = {"n": target.target_n, "d": target.target_d}
    else:
        where = {"compute": target.target_compute} if target.target_compute else None
    try:
        return predict_tasks(frame, where, seed=cfg.seed)
    except Exception as exc:  # noqa: BLE001 - the trials are recorded; a failed task fit says why, once
        return {"(every task)": TaskPrediction.none(f"{type(exc).__name__}: {exc}")}


def log_task_predictions(client, parent: str, tasks: dict) -> None:
    """task_predictions.json, and each task's accuracy and interval as metrics where it is trusted."""
    client.log_dict(parent, {name: p.to_dict() for name, p in tasks.items()}, "task_predictions.json")
    now, metrics = int(time.time() * 1000), []
    for name, p in tasks.items():
        d = p.to_dict()
        if not d.get("trusted") or d.get("accuracy") is None:
            continue
        values = {"accuracy": d["accuracy"]}
        if d["ci"].get("accuracy"):
            values["accuracy_lo"], values["accuracy_hi"] = d["ci"]["accuracy"]
        metrics += [Metric(f"prediction.task.{name}.{k}", float(v), now, 0) for k, v in values.items()]
    if metrics:
        client.log_batch(parent, metrics=metrics)


def end_interrupted(
    client,
    cfg: SweepConfig,
    experiment_id: str,
    parent: str,
    sweep_id: str,
    signal_name: str,
    *,
    planned: int | None,
) -> SweepResult:
    """The sweep stopped by a signal: its parent run KILLED with the reason and how to continue; no fit
    (the runs so far are in MLflow, and the fit of a complete sweep comes after --resume)."""
    table = RunTable.from_mlflow(
        experiment=cfg.experiment_name, tracking_uri=cfg.tracking_uri, sweep_id=sweep_id
    )
    done = int(table.frame["status"].isin(FINISHED).sum())
    of = f" of {planned}" if planned else ""
    reason = (
        f"interrupted: {signal_name} after {done}{of} trials; run the same command with --resume to "
        "continue it (the stopped trials from their last checkpoints)"
    )
    client.set_tag(parent, "sweeper.stop_reason", reason)
    set_description(
        client,
        parent,
        describe(cfg, stop_reason=reason, fit=None, n_trials=len(table), flops=table.total_flops),
    )
    client.set_terminated(parent, "KILLED")
    return sweep_result(
        cfg,
        experiment_id,
        parent,
        sweep_id,
        table,
        fit=None,
        converged=False,
        stop_reason=reason,
        interrupted=True,
        fit_error="the sweep was interrupted before its plan was complete",
    )


def sweep_result(
    cfg: SweepConfig, experiment_id: str, parent: str, sweep_id: str, table: RunTable, **outcome
) -> SweepResult:
    """What `Sweeper.run` returns for the sweep whose runs are `table`; `outcome`: its fit, stop reason..."""
    return SweepResult(
        sweep_id=sweep_id,
        experiment_id=experiment_id,
        parent_run_id=parent,
        tracking_uri=redact_uri(cfg.tracking_uri),
        runs=table,
        total_flops=table.total_flops,
        n_trials=len(table),
        **outcome,
    )


def log_prediction(client, parent: str, prediction) -> None:
    """prediction.json, the tag sweeper.prediction_trusted, and the numbers as metrics where they are
    trusted (an untrusted value in the runs table would be compared as if it were a result)."""
    client.log_dict(parent, prediction.to_dict(), "prediction.json")
    client.set_tag(parent, "sweeper.prediction_trusted", str(prediction.trusted).lower())
    if prediction.warnings:
        client.set_tag(parent, "sweeper.prediction_warnings", "; ".join(prediction.warnings)[:5000])
    now = int(time.time() * 1000)
    values = {"trusted": float(prediction.trusted)}
    if prediction.compute:
        values["compute"] = prediction.compute
    if prediction.trusted:
        values.update({"N_opt": prediction.n_params, "D_opt": prediction.n_tokens, "loss": prediction.loss})
        for name, ci in prediction.ci.items():
            if ci is not None:
                values[f"{name}_lo"], values[f"{name}_hi"] = ci
    client.log_batch(
        parent,
        metrics=[
            Metric(f"prediction.{k}", float(v), now, 0)
            for k, v in values.items()
            if v is not None and math.isfinite(float(v))
        ],
    )


def target_fits(table: RunTable, cfg: SweepConfig) -> dict:
    """One point fit per measured target (caption, interleaved, text), where identifiable."""
    ok = table.ok().frame
    fits = {}
    for target in ("caption", "interleaved", "text"):
        if ok.empty or not ok[f"loss_{target}"].notna().all():
            continue
        try:
            fits[target] = fit_law(ok, law=cfg.fit.law, target=target, seed=cfg.seed)
        except SweeperInputError:
            continue
    return fits
