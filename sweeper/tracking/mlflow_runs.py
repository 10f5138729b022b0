"""MLflow runs in and out: experiment, one parent run per sweep, one child run per trial.

Trials never talk to MLflow themselves: the driver's `TrialRecorder` (a Ray Tune
callback) writes their child runs from the results they report. So workers need
no tracking credentials, and everything the fitter and `--resume` need is in one
place that outlives the driver.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray.tune import Callback

from sweeper.config.redaction import redact, redact_uri
from sweeper.tracking.outbox import MlflowOutbox
from sweeper.trial.spec import TrialSpec

ROLE = "sweeper.role"
CURVE_KEYS = (
    "val_loss",
    "val_loss_caption",
    "val_loss_interleaved",
    "val_loss_text",
    "train_loss",
    "lr",
    "tokens",
    "flops",
)
FINAL_KEYS = (
    "loss",
    "loss_caption",
    "loss_interleaved",
    "loss_text",
    "flops",
    "n_tokens_trained",
    "n_image_tokens",
    "n_text_tokens",
    "n_scored_tokens",
    "wall_time_s",
    "resumed_from_step",
    "flops_spent",
    "branch_step",
    "stable_from_step",
    "skipped_images",
    "cut_tokens",
)
FINISHED = ("ok", "diverged")
# MLflow 3 opens an experiment in its GenAI view (traces, prompts) unless it is marked as model
# training; with this tag its UI opens on the runs table, where the trials are.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
NOTE = "mlflow.note.content"  # the run description the MLflow UI shows above a run's details
# logged as they come: model-specific metrics (MoE routing), downstream tasks, bits per byte
EXTRA_PREFIXES = ("moe_", "aux_loss", "task.", "bpb")


def metric_keys(result: dict[str, Any], keys) -> tuple[str, ...]:
    return tuple(keys) + tuple(k for k in result if k.startswith(EXTRA_PREFIXES))


def client_for(tracking_uri: str) -> MlflowClient:
    # Fail fast while a server is down: the outbox keeps the writes, so MLflow's own
    # minutes-long retry loop would only stall the Tune driver.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    if (
        redact_uri(tracking_uri) != tracking_uri
    ):  # MLflow prints run links with the raw URI, credentials and all
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri)


def ensure_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    artifacts = None
    if tracking_uri.startswith("sqlite:///"):  # keep the embedded store's artifacts beside it
        root = Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "artifacts"
        artifacts = root.as_uri()
    return client.create_experiment(name, artifact_location=artifacts, tags=EXPERIMENT_KIND)


def new_sweep_id() -> str:
    return uuid.uuid4().hex[:12]


def flatten(prefix: str, value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: json.dumps(value) if isinstance(value, (list, tuple)) else str(value)}


def code_version() -> dict[str, str]:
    """The package version, and the git commit when run from a checkout (MLflow's own tag name)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        tags = {"sweeper.version": version("sweeper")}
    except PackageNotFoundError:
        tags = {"sweeper.version": "unknown"}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        if commit.returncode == 0:
            tags["mlflow.source.git.commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return tags


def start_sweep_run(
    client: MlflowClient, experiment_id: str, *, sweep_id: str, config: dict, tags: dict[str, str]
) -> str:
    run = client.create_run(
        experiment_id,
        run_name=f"sweep-{config.get('space', '')}-{sweep_id}",
        tags={ROLE: "sweep", "sweeper.sweep_id": sweep_id, **code_version(), **tags},
    )
    params = [Param(k, v[:6000]) for k, v in flatten("", redact(config)).items()]
    for i in range(0, len(params), 100):
        client.log_batch(run.info.run_id, params=params[i : i + 100])
    return run.info.run_id


def find_sweep_run(client: MlflowClient, experiment_id: str, sweep_id: str | None, role: str = "sweep"):
    """The sweep (or tune job, `role` tune) to resume: the given id, else the most recent in the
    experiment."""
    query = f"tags.`{ROLE}` = '{role}'"
    if sweep_id:
        query += f" and tags.`sweeper.sweep_id` = '{sweep_id}'"
    runs = client.search_runs([experiment_id], query, order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def search_trial_runs(
    *, experiment: str, tracking_uri: str | None = None, sweep_id: str | None = None
) -> pd.DataFrame:
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        return pd.DataFrame()
    query = f"tags.`{ROLE}` = 'trial'"
    if sweep_id:
        query += f" and tags.`sweeper.sweep_id` = '{sweep_id}'"
    return mlflow.search_runs([found.experiment_id], filter_string=query, output_format="pandas")


def load_json_artifact(client: MlflowClient, run_id: str, name: str) -> Any | None:
    """A small JSON artifact of a run (plan.json, fit.json), or None when the run has none."""
    import tempfile

    os.environ.setdefault(
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"
    )  # no progress bar for one small file
    if name not in {a.path for a in client.list_artifacts(run_id)}:
        return None
    with tempfile.TemporaryDirectory(prefix="sweeper-artifact-") as tmp:
        return json.loads(Path(client.download_artifacts(run_id, name, tmp)).read_text())


def trial_runs_by_point(
    client: MlflowClient, experiment_id: str, sweep_id: str
) -> dict[str, tuple[str, str]]:
    """point_id -> (run_id, status) for every child run of a sweep."""
    query = f"tags.`{ROLE}` = 'trial' and tags.`sweeper.sweep_id` = '{sweep_id}'"
    out: dict[str, tuple[str, str]] = {}
    for run in client.search_runs([experiment_id], query, max_results=50000):
        out[run.data.tags.get("sweeper.point_id", "")] = (
            run.info.run_id,
            run.data.tags.get("sweeper.status", ""),
        )
    return out


def stopped_checkpoints(client: MlflowClient, experiment_id: str, sweep_id: str) -> dict[str, str]:
    """point_id -> the last checkpoint of each trial of a sweep that was stopped (interrupted) after
    writing one, where that checkpoint is still on disk: --resume continues those trials from it."""
    query = (
        f"tags.`{ROLE}` = 'trial' and tags.`sweeper.sweep_id` = '{sweep_id}' "
        "and tags.`sweeper.status` = 'stopped'"
    )
    out = {}
    for run in client.search_runs([experiment_id], query, max_results=50000):
        path = run.data.tags.get("sweeper.checkpoint")
        if path and Path(path).is_dir():
            out[run.data.tags.get("sweeper.point_id", "")] = path
    return out


def finite_metrics(values: dict[str, Any], keys, step: int, timestamp: int) -> list[list]:
    out = []
    for key in keys:
        value = values.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            out.append([key, float(value), timestamp, step])
    return out


def point_metrics(point: dict) -> list[Metric]:
    """N, D and the slice's budget as metrics: the runs table sorts and charts metrics numerically
    (params are strings), so these are the columns a user sorts the trials by."""
    values = {
        "N": point.get("n_params"),
        "D": point.get("n_tokens"),
        "C_budget": point.get("budget"),
        "epochs": point.get("epochs") or None,
    }  # passes over its data (none logged for generated data)
    return [Metric(k, float(v), 0, 0) for k, v in values.items() if isinstance(v, (int, float))]


def set_description(client: MlflowClient, run_id: str, text: str) -> None:
    """The run description (markdown) the MLflow UI shows at the top of the run's page."""
    client.set_tag(run_id, NOTE, text[:5000])


class DriverOnly:
    """Tune pickles callbacks and stoppers into its experiment state; ours hold live
    clients and the tracking URI (maybe with credentials) and are rebuilt from
    MLflow on --resume, so nothing of them is written to disk."""

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class TrialRecorder(DriverOnly, Callback):
    """Writes one MLflow child run per trial, from the driver, through a durable outbox.

    A point that already has a child run (a resumed sweep) logs into that run
    again rather than making a duplicate. While MLflow is unreachable the writes
    wait on local disk (sweeper.tracking.outbox) and are flushed in order once it is back.
    """

    def __init__(
        self,
        *,
        tracking_uri: str,
        experiment_id: str,
        parent_run_id: str,
        sweep_id: str,
        design: str,
        existing: dict[str, tuple[str, str]] | None = None,
        outbox_dir: Path = Path(".sweeper/outbox"),
    ):
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.sweep_id = sweep_id
        self.design = design
        self.client = MlflowClient(tracking_uri=tracking_uri)
        run_ids = {p: rid for p, (rid, _) in (existing or {}).items()}
        self.outbox = MlflowOutbox(outbox_dir / f"{sweep_id}.jsonl", self.client, self._create_child, run_ids)
        self.in_flight: set[str] = set()

    def _create_child(self, config: dict) -> str:
        trial = TrialSpec.of(config)
        point = trial.point
        tags = {
            "mlflow.parentRunId": self.parent_run_id,
            ROLE: "trial",
            "sweeper.sweep_id": self.sweep_id,
            "sweeper.point_id": point["point_id"],
            "sweeper.design": self.design,
            "sweeper.status": "running",
            "source": trial.source,
        }
        # Idempotent: a create whose reply was lost (server going down) must not leave a twin run behind.
        query = (
            f"tags.`sweeper.sweep_id` = '{self.sweep_id}' and tags.`sweeper.point_id` = '{point['point_id']}'"
        )
        found = self.client.search_runs([self.experiment_id], query, max_results=1)
        run = (
            found[0]
            if found
            else self.client.create_run(self.experiment_id, run_name=point["point_id"], tags=tags)
        )
        params = {
            **{
                k: point[k]
                for k in (
                    "kind",
                    "size",
                    "n_params",
                    "n_params_total",
                    "n_tokens",
                    "budget",
                    "steps",
                    "seq_len",
                )
            },
            "seed": trial.seed,
            **flatten("hp", trial_hparams(trial)),
            **data_params(trial.data, point),
        }
        self.client.log_batch(
            run.info.run_id,
            params=[Param(k, str(v)) for k, v in params.items()],
            metrics=point_metrics(point),
            tags=[RunTag("status", "running")],
        )
        return run.info.run_id

    # Trial events by point, for the in-process driver; the Tune callbacks below hand theirs here.
    def trial_started(self, config: dict, trial_id: str) -> None:
        point = TrialSpec.of(config).point_id
        config = {  # what the child run records (the outbox keeps it as JSON until MLflow has it)
            k: v for k, v in config.items() if k in ("point", "hparams", "recipe", "seed", "source", "data")
        }
        self.in_flight.add(point)
        self.outbox.put("create", point, config=config)
        self.outbox.put(
            "log", point, tags=[["sweeper.status", "running"], ["sweeper.tune_trial_id", trial_id]]
        )

    def trial_result(self, point: str, result: dict) -> None:
        step = int(result.get("step", result.get("training_iteration", 0)))
        metrics = finite_metrics(
            result, metric_keys(result, CURVE_KEYS), step, int(result.get("timestamp", 0)) * 1000
        )
        if metrics:
            self.outbox.put("log", point, metrics=metrics)

    def trial_completed(self, point: str, result: dict) -> None:
        status = result.get("status", "ok")
        metrics = finite_metrics(
            result,
            metric_keys(result, FINAL_KEYS),
            int(result.get("step", 0)),
            int(result.get("timestamp", 0)) * 1000,
        )
        if isinstance(result.get("flops"), (int, float)) and math.isfinite(result["flops"]):
            metrics.append(["C", float(result["flops"]), int(result.get("timestamp", 0)) * 1000, 0])
        tags = [["sweeper.status", status], ["status", status]]
        if result.get("device"):  # where the trial really trained (sweeper.train.device)
            tags.append(["sweeper.device", str(result["device"])])
        self.in_flight.discard(point)
        if status == "diverged":
            tags.append(["sweeper.error", str(result.get("error", "loss diverged"))[:500]])
        self.outbox.put("log", point, metrics=metrics, tags=tags)
        self.outbox.put("end", point, status="FINISHED" if status == "ok" else "FAILED")

    def trial_failed(self, point: str, error: str) -> None:
        self.in_flight.discard(point)
        self.outbox.put(
            "log", point, tags=[["sweeper.status", "failed"], ["status", "failed"], ["sweeper.error", error]]
        )
        self.outbox.put("end", point, status="FAILED")

    def sweep_ended(self) -> None:
        # Trials cut short when the stopper ends the sweep: not a result, and --resume may run them again.
        for point in sorted(self.in_flight):
            self.outbox.put("log", point, tags=[["sweeper.status", "stopped"], ["status", "stopped"]])
            self.outbox.put("end", point, status="KILLED")
        self.in_flight.clear()

    def on_trial_start(self, iteration, trials, trial, **info):
        self.trial_started(trial.config, trial.trial_id)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.trial_result(TrialSpec.of(trial.config).point_id, result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.trial_completed(TrialSpec.of(trial.config).point_id, trial.last_result or {})

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        # where --resume continues this trial if the sweep is interrupted (sweeper.sweep.interruption)
        step = (trial.last_result or {}).get("step")
        self.outbox.put(
            "log",
            TrialSpec.of(trial.config).point_id,
            tags=[["sweeper.checkpoint", checkpoint.path], ["sweeper.checkpoint_step", str(step)]],
        )

    def on_trial_error(self, iteration, trials, trial, **info):
        self.trial_failed(TrialSpec.of(trial.config).point_id, _error_text(trial))

    def on_experiment_end(self, trials, **info):
        self.sweep_ended()


def data_params(data: dict | None, point: dict) -> dict:
    """What a trial trained on: the source, its files and tokenizer, and the vocabulary the model embeds."""
    data = data or {}
    out = {"data.source": data.get("source", "generated")}
    if out["data.source"] != "generated":
        out.update({f"data.{k}": data[k] for k in ("path", "dataset", "tokenizer") if data.get(k)})
    for target, sub in (data.get("targets") or {}).items():  # a mixture: each target's source and files
        out.update({f"data.{target}.{k}": sub[k] for k in ("source", "path", "dataset") if sub.get(k)})
    if point.get("vocab_size"):
        out["vocab_size"] = point["vocab_size"]
    return out


def trial_hparams(trial: TrialSpec) -> dict:
    """The hyperparameters the trial really trains with: the recipe resolved at its point."""
    hp = dict(trial.hparams)
    return {**hp, **trial.hparam_values()} if trial.point and hp else hp


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None)
    try:
        text = Path(path).read_text() if path else ""
    except OSError:
        text = ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "trial raised an error")[:500]
