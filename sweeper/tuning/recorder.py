"""MLflow child runs for the trials of a hyperparameter search.

The isoFLOP sweep's TrialRecorder keys runs by point, one run per point (and
resumes by point); here many trials share a rung's point, so runs are keyed by
Tune trial id, and a trial that ends without its final report (`status`) was
stopped by the scheduler: it is recorded `sweeper.status = stopped`, with the
tokens it got. Like TrialRecorder it writes from the driver only.
"""

from __future__ import annotations

import math

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray.tune import Callback

from sweeper.tracking.mlflow_runs import CURVE_KEYS, ROLE, finite_metrics, flatten, point_metrics
from sweeper.trial.spec import TrialSpec
from sweeper.tuning.trainable import trial_hparams

STOPPED = "stopped"


class TuneRecorder(Callback):
    def __init__(self, *, tracking_uri: str, experiment_id: str, parent_run_id: str, sweep_id: str):
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.experiment_id, self.parent_run_id, self.sweep_id = experiment_id, parent_run_id, sweep_id
        self.run_ids: dict[str, str] = {}
        self._last: dict[str, dict] = {}
        self._hparams: dict[str, dict] = {}
        self._n_tokens: dict[str, int] = {}

    def run_id_for(self, trial) -> str:
        run_id = self.run_ids.get(trial.trial_id)
        if run_id is None:
            run_id = self._create_trial_run(trial)
            self.run_ids[trial.trial_id] = run_id
        return run_id

    def _create_trial_run(self, trial) -> str:

        spec = TrialSpec.of(trial.config)
        point = spec.point
        hp = trial_hparams(trial.config)
        hp["batch_tokens"] = hp["batch_size"] * point["seq_len"]
        self._hparams[trial.trial_id] = hp
        self._n_tokens[trial.trial_id] = int(point["n_tokens"])
        tags = {
            "mlflow.parentRunId": self.parent_run_id,
            ROLE: "tune_trial",
            "sweeper.sweep_id": self.sweep_id,
            "sweeper.point_id": point["point_id"],
            "sweeper.rung": spec.rung or point["size"],
            "sweeper.status": "running",
            "sweeper.tune_trial_id": trial.trial_id,
            "sweeper.recipe": spec.recipe_name,
            "source": spec.source,
        }
        run = self.client.create_run(
            self.experiment_id, run_name=f"{point['size']}-{trial.trial_id}", tags=tags
        )
        params = {
            **{k: point[k] for k in ("kind", "size", "n_params", "n_tokens", "budget", "seq_len")},
            "seed": spec.seed,
            **flatten("hp", hp),
            **flatten("search", spec.search),
            "recipe": spec.recipe_name,
            "recipe_run": (spec.recipe or {}).get("run_id"),
        }
        self.client.log_batch(
            run.info.run_id,
            params=[Param(k, str(v)[:6000]) for k, v in params.items()],
            metrics=point_metrics(point),
            tags=[RunTag("status", "running")],
        )
        return run.info.run_id

    def on_trial_start(self, iteration, trials, trial, **info):
        self.run_id_for(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._last[trial.trial_id] = dict(result)
        step = int(result.get("step", result.get("training_iteration", 0)))
        metrics = [
            Metric(*m)
            for m in finite_metrics(result, CURVE_KEYS, step, int(result.get("timestamp", 0)) * 1000)
        ]
        if metrics:
            self.client.log_batch(self.run_id_for(trial), metrics=metrics)

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or self._last.get(trial.trial_id, {})
        self._last[trial.trial_id] = dict(result)
        run_id = self.run_id_for(trial)
        completed = "status" in result or result.get("tokens", 0) >= self._n_tokens.get(
            trial.trial_id, math.inf
        )
        status = result.get("status", "ok") if completed else STOPPED
        step = int(result.get("step", 0))
        metrics = [
            Metric(*m) for m in finite_metrics(result, ("val_loss", "loss", "flops", "tokens"), step, 0)
        ]
        metrics += [
            Metric("C", m.value, 0, step) for m in metrics if m.key == "flops"
        ]  # sortable beside N, D
        tags = [
            RunTag("sweeper.status", status),
            RunTag("status", status),
            RunTag("sweeper.stopped_early", str(not completed).lower()),
        ]
        self.client.log_batch(run_id, metrics=metrics, tags=tags)
        self.client.set_terminated(run_id, "FINISHED" if status in ("ok", STOPPED) else "FAILED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._last.setdefault(trial.trial_id, {})["error"] = True
        run_id = self.run_id_for(trial)
        self.client.log_batch(run_id, tags=[RunTag("sweeper.status", "failed"), RunTag("status", "failed")])
        self.client.set_terminated(run_id, "FAILED")

    def trials(self) -> list[dict]:
        """What each trial found: its hyperparameters, last val_loss, whether it finished, FLOPs spent."""
        out = []
        for trial_id, hp in self._hparams.items():
            last = self._last.get(trial_id, {})
            # ASHA stops a trial at max_t on its last evaluation, before the closing report:
            # a trial whose tokens reached the rung's is complete either way.
            full = last.get("status") == "ok" or (
                last.get("tokens", 0) >= self._n_tokens.get(trial_id, math.inf)
                and "status" not in last
                and not last.get("error")
            )
            out.append(
                {
                    "trial_id": trial_id,
                    "hparams": hp,
                    "val_loss": float(last.get("val_loss", math.nan)),
                    "completed": full,
                    "stopped": not full and "status" not in last and not last.get("error"),
                    "flops": float(last.get("flops", 0.0)),
                    "tokens": float(last.get("tokens", 0.0)),
                }
            )
        return out
