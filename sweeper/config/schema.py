"""The search-space schema: frozen pydantic models, loaded from YAML.

A search space in `search_spaces/NAME.yaml` is read with `yaml.safe_load` (merged over the space
it `extends`), then overridden from `Sweeper(**kwargs)` or CLI flags. Every key, type and range is
declared once here; `sweeper schema` prints it as JSON Schema, and the training loop's
hyperparameters (TrainHParams) are its `training` section. A typo or a bad value fails before Ray
starts with SweeperInputError: the dotted key, the value, what is allowed, and a close match.
"""

from __future__ import annotations

import difflib
import os
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sweeper.errors import SweeperInputError

SPACES_DIR = Path(__file__).resolve().parents[2] / "search_spaces"
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"

Positive = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
Count = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
Mixture = tuple[float, float, float]
TARGET_NAMES = ("caption", "interleaved", "text")


def key(default: Any, doc: str, **constraints: Any) -> Any:
    """A schema field: its default, what it means (units included) and its allowed range."""
    return Field(default, description=doc, **constraints)


class Section(BaseModel):
    """Frozen and closed: an unknown key is an error, not a silently ignored setting."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    def replace(self, **changes: Any):
        """A copy with `changes`, validated like the original."""
        return type(self)(**{**dict(self), **changes})


class ModelSection(Section):
    kind: str = key("dense_text", "model kind from the registry: dense_text, early_fusion, late_fusion, moe")
    ladder: str = key("tiny", "size ladder: tiny (CPU) or paper (the reference's 275M-3.7B)")
    sizes: tuple[str, ...] = key((), "ladder sizes to sweep; empty: all")
    vocab_size: Count = key(
        0, "embedding rows; 0: the ladder's, or data.tokenizer's vocabulary rounded to 64"
    )


class BudgetSection(Section):
    """isoFLOP slices: explicit `slices`, or `n_slices` budgets `ratio` apart, the largest the biggest
    for which the initial grid fits in the sweep's budget."""

    slices: tuple[Positive, ...] = key((), "slice budgets in FLOPs; empty: n_slices geometric ones")
    n_slices: PositiveInt = key(3, "number of geometric slices")
    ratio: float = key(3.0, "FLOP ratio between neighbouring slices", gt=1)
    min_tokens_per_param: Positive = key(2.0, "fewest training tokens per parameter of a point")
    max_tokens_per_param: Positive = key(2000.0, "most training tokens per parameter of a point")
    min_steps: PositiveInt = key(20, "fewest optimizer steps of a point")


class TrainHParams(Section):
    """How one trial trains: the `training` section, and what the loop reads."""

    lr: Positive = key(3e-3, "peak learning rate")
    batch_size: PositiveInt = key(16, "sequences per optimizer step")
    warmup_frac: Fraction = key(0.05, "warmup as a fraction of the steps")
    warmup_steps: Count | None = key(None, "warmup in steps, instead of warmup_frac (the paper's 1k/2.5k/5k)")
    cooldown_frac: Fraction = key(0.2, "1-sqrt cooldown as a fraction of the steps (the paper: 0.2)")
    weight_decay: float = key(1e-4, "fully decoupled AdamW weight decay", ge=0)
    betas: tuple[float, float] = key((0.9, 0.95), "AdamW betas")
    grad_clip: float = key(1.0, "gradient-norm clip", ge=0)
    mixture: Mixture = key((0.45, 0.45, 0.10), "weights of the caption, interleaved and text data")
    vision_lr_mult: float = key(0.1, "late fusion: the vision encoder's LR is lr times this", ge=0)
    aux_loss_weight: float = key(0.01, "MoE load-balancing loss weight", ge=0)
    eval_every: PositiveInt = key(50, "steps between validation evaluations")
    eval_batches: PositiveInt = key(4, "validation batches per evaluation and target")
    eval_batch_size: PositiveInt | None = key(None, "sequences per validation batch; None: batch_size")
    checkpoint_every: Count = key(250, "steps between trial checkpoints (Tune retries resume there); 0: none")

    @model_validator(mode="after")
    def _fractions(self):
        if self.warmup_frac + self.cooldown_frac >= 1:
            raise SweeperInputError(
                "training.cooldown_frac", self.cooldown_frac, "warmup_frac + cooldown_frac must be below 1"
            )
        if min(self.mixture) < 0 or sum(self.mixture) <= 0:
            raise SweeperInputError(
                "training.mixture",
                list(self.mixture),
                "weights (caption, interleaved, text) must be >= 0 and not all zero",
            )
        return self


class TrainingSection(TrainHParams):
    branching: bool = key(
        False,
        "each trial continues its size's shared warmup-stable run and trains only "
        "its own cooldown (snapshots in branch_store)",
    )
    branch_store: str | None = key(
        None, "where stable-run snapshots live; None: ./.sweeper/stable (shared storage on a cluster)"
    )
    recipe: Literal["fixed", "paper", "fitted"] = key(
        "fixed",
        "lr, batch and warmup from these values, the reference's Table 6, or a `sweeper tune` run's laws",
    )
    recipe_run: str | None = key(None, "recipe: fitted: the MLflow run id of the `sweeper tune` job")


class DimensionSection(Section):
    """One tuned hyperparameter: loguniform/uniform take low <= x <= high; int/logint whole numbers,
    both bounds included; choice one of `values`."""

    dist: Literal["loguniform", "uniform", "int", "logint", "choice"] | None = key(None, "distribution")
    low: float | None = key(None, "lower bound")
    high: float | None = key(None, "upper bound")
    values: tuple[Any, ...] = key((), "choice: the values")


class TuneSection(Section):
    """`sweeper tune`: a hyperparameter search per rung, and hyperparameter laws across rungs."""

    space: dict[str, DimensionSection] = key({}, "tuned hyperparameters by name (lr, batch_tokens, ...)")
    sampler: str = key("TPESampler", "an optuna.samplers class that takes only a seed")
    n_trials: PositiveInt = key(12, "trials per rung")
    n_startup_trials: Count = key(
        0, "random proposals before a model-based sampler models; 0: a third of n_trials, at least 3"
    )
    scheduler: Literal["asha", "none"] = key("asha", "early stopping of poor trials")
    time_attr: Literal["tokens", "step"] = key("tokens", "ASHA's clock")
    grace_frac: float = key(0.2, "ASHA's first decision after this fraction of a rung's tokens", gt=0, le=1)
    reduction_factor: float = key(3.0, "ASHA keeps 1/this of the trials at each milestone", gt=1)
    cooled_decisions: bool = key(
        True,
        "ASHA decides on a short cooldown branched off each trial (mid-run "
        "losses at peak LR favour small LRs)",
    )
    rungs: Literal["ladder", "plan"] = key("ladder", "one point per size at tokens_per_param, or the plan's")
    sizes: tuple[str, ...] = key((), "sizes to tune; empty: the model section's")
    tokens_per_param: Positive = key(20.0, "training tokens per parameter of a ladder rung")
    scale_with: Literal["C", "N"] = key("C", "the x of the fitted hyperparameter laws")
    near_optimal: Positive = key(0.01, "trials within this relative loss of a rung's best are near-optimal")
    mixtures: tuple[Any, ...] = key(
        (), "a mixture sweep: one isoFLOP sweep per mixture (45-45-10 or weights)"
    )


class SimulationSection(Section):
    """The labelled simulated trainable: loss from a known law plus multiplicative noise."""

    law: str = key("chinchilla", "the law the simulated losses follow")
    params: dict[str, float] = key(
        {"E": 1.9, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.37},
        "its parameters (from the command line: E=1.9,A=400,...)",
    )
    noise: float = key(0.005, "standard deviation of the log loss", ge=0)

    @field_validator("params", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return dict(part.split("=", 1) for part in value.split(",") if part.strip())
        except ValueError:
            raise SweeperInputError(
                "simulation.params", value, "write it as KEY=VALUE pairs separated by commas"
            ) from None


class FitSection(Section):
    law: str = key("chinchilla", "the law fitted to the trials")
    n_bootstrap: Count = key(50, "bootstrap refits behind each confidence interval")
    target: str = key("loss", "the metric fitted")
    watch: tuple[str, ...] = key(("a", "b"), "quantities whose 95% CI half-widths decide convergence")
    target_ci: Positive = key(0.02, "stop once every watched CI half-width is at most this")
    target_ci_log_L_opt: Positive | None = key(
        None,
        "log_L_opt's own target, in log loss (0.01: the predicted loss within about 1%); None: target_ci",
    )
    target_ci_task: Positive = key(
        0.05, "a watched task accuracy's (task.<name>.accuracy) own target, in accuracy (0.05: 5 points)"
    )
    patience: PositiveInt = key(2, "consecutive converged refits before stopping")
    target_compute: Positive | None = key(
        None,
        "FLOPs the law will be used at: the sweep predicts N_opt, "
        "D_opt and the loss there (None: at 10x its largest slice), and "
        "fits add log_L_opt, the predicted optimal loss there",
    )
    target_n: Positive | None = key(
        None,
        "with target_d: predict the loss of this many parameters instead "
        "(an overtrained model, as users train)",
    )
    target_d: Positive | None = key(None, "with target_n: the tokens that model trains on")


class RaySection(Section):
    address: str | None = key(None, 'None: start a local Ray; "auto": join the cluster')
    max_concurrent_trials: PositiveInt = key(2, "trials running at once")
    cpus_per_trial: Positive = key(1.0, "CPUs each trial reserves")
    gpus_per_trial: float = key(0.0, "GPUs each trial reserves (and trains on)", ge=0)
    storage_path: str | None = key(
        None,
        "Tune state and Train checkpoints; None: ./.sweeper (on a multi-node "
        "cluster a path every node sees: NFS, s3://)",
    )
    max_failures: Count = key(1, "retries of a crashed trial from its last checkpoint; then recorded failed")
    dashboard: bool = key(False, "local Ray only: start the dashboard on dashboard_host")
    dashboard_host: str = key("127.0.0.1", "the dashboard's bind address")


class DistributedSection(Section):
    """Trials of N >= min_params_for_distributed train as a Ray Train TorchTrainer with DeepSpeed ZeRO."""

    enabled: bool = key(False, "train large trials with DeepSpeed")
    workers: PositiveInt = key(2, "Ray Train workers per distributed trial")
    zero_stage: Literal[0, 1, 2, 3] = key(0, "DeepSpeed ZeRO stage")
    use_gpu: bool = key(False, "bf16 + NCCL on GPU; fp32 + gloo on CPU")
    cpus_per_worker: Positive = key(1.0, "CPUs each worker reserves")
    gpus_per_worker: float = key(1.0, "GPUs each worker reserves (only with use_gpu)", ge=0)
    micro_batch_size: Count = key(0, "sequences per worker per micro-step; 0: the whole per-worker share")
    min_params_for_distributed: Count = key(0, "N at and above which a trial goes distributed")


class DataSection(Section):
    """Where trials' data comes from. generated: procedural documents (nothing on disk). token_shards:
    uint16/uint32 `.bin` token arrays (nanoGPT/Megatron) at `path` (file, folder, glob; local or fsspec).
    hf_text: the `text_field` column of a `datasets` source (files at `path`, or hub `dataset`),
    tokenized with `tokenizer` into shards cached in `cache_dir`. webdataset: image-caption tar shards
    (img2dataset layout). obelics: interleaved documents (rows of `texts` and `images` lists).
    mixture: each target from its own section in `targets`, weighed by training.mixture. Validation
    uses `val_path`, else the last `val_sequences` windows (pairs, documents) of `path`."""

    source: Literal["generated", "token_shards", "hf_text", "webdataset", "obelics", "mixture"] = key(
        "generated", "the kind of data"
    )
    path: str | None = key(None, "files of the source: a file, a folder or a glob (local or fsspec URL)")
    dtype: Literal["uint16", "uint32"] = key("uint16", "token_shards: the token id type")
    val_path: str | None = key(None, "held-out validation data; None: the tail of path")
    val_sequences: PositiveInt = key(64, "validation windows (pairs, documents) held out from path")
    dataset: str | None = key(None, "hf_text: a datasets builder (json, parquet...) or hub name")
    text_field: str = key("text", "hf_text: the text column")
    split: str = key("train", "hf_text from the hub: the split")
    tokenizer: str | None = key(
        None,
        "a tokenizer.json (`sweeper tokenizer` trains one); None for "
        "webdataset/obelics: the generated data's characters",
    )
    cache_dir: str | None = key(None, "hf_text: tokenized shards; None: ./.sweeper/tokenized")
    bad_images: Literal["skip", "error"] = key(
        "skip", "an image that does not decode is skipped and counted, or fails the plan naming it"
    )
    bad_image_share: float = key(
        0.1,
        "skip: the share of images (of an even sample the plan decodes) that may "
        "fail to decode before the plan refuses the source",
        ge=0,
        le=1,
    )
    targets: dict[str, DataSection] = key({}, "mixture: a source per target (caption, interleaved, text)")
    loader_workers: Count = key(
        0,
        "DataLoader processes building batches; 0: in the trial (CPU trials). "
        "On a GPU node 1-4, added to ray.cpus_per_trial",
    )


class TasksSection(Section):
    """Downstream tasks every trained trial is scored on when it ends, as ranked classification (each
    choice's log-likelihood, as lm-evaluation-harness and OLMo do): the child run gets
    `task.<name>.accuracy`, `task.<name>.loss` (the right choice's nats per token) and
    `task.<name>.n_items`."""

    generated: bool = key(
        True,
        "score the generated data's own tasks (next word; caption and image match for kinds that see "
        "images); used when the text comes from the generated language",
    )
    n_items: PositiveInt = key(640, "items per generated task (640: a standard error of at most 2 points)")
    files: dict[str, str] = key(
        {}, 'text tasks by name: a jsonl file of {"context": ..., "choices": [...], "answer": i} lines'
    )


class TrackingSection(Section):
    uri: str | None = key(None, "MLflow tracking URI; None: $MLFLOW_TRACKING_URI, else ./mlruns's SQLite")
    experiment: str | None = key(None, 'MLflow experiment; None: "sweeper-<space>"')
    outage_timeout_s: Positive = key(600.0, "at the end, seconds to wait for an unreachable MLflow")


def resolve_tracking_uri(uri: str | None) -> str:
    """The given URI, else $MLFLOW_TRACKING_URI, else the embedded SQLite store."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


class SweepConfig(Section):
    space: str = key("tiny", "the search space's name")
    budget: Positive = key(1e13, "total FLOPs the sweep may spend")
    seed: int = key(0, "seed of the plan, the sampler and every trial's data")
    design: Literal["grid", "adaptive"] = key("adaptive", "uniform isoFLOP grid, or adaptive placement")
    trainable: Literal["torch", "simulated"] = key("torch", "real training, or the labelled simulated law")
    throughput_flops: Positive = key(2e9, "assumed FLOP/s per trial, for wall-time estimates only")
    resume: bool = key(False, "continue the latest sweep of the experiment")
    model: ModelSection = ModelSection()
    budgets: BudgetSection = BudgetSection()
    training: TrainingSection = TrainingSection()
    simulation: SimulationSection = SimulationSection()
    fit: FitSection = FitSection()
    ray: RaySection = RaySection()
    tracking: TrackingSection = TrackingSection()
    distributed: DistributedSection = DistributedSection()
    data: DataSection = DataSection()
    tune: TuneSection = TuneSection()
    tasks: TasksSection = TasksSection()

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise input_error(exc) from None

    @model_validator(mode="after")
    def _consistent(self):
        _check_consistency(self)
        return self

    @property
    def tracking_uri(self) -> str:
        return resolve_tracking_uri(self.tracking.uri)

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or f"sweeper-{self.space}"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def to_yaml(self) -> str:
        """The fully resolved search space, defaults included: `load_config` of it gives this config back
        (credentials in URIs are masked: they are never written)."""
        from sweeper.config.redaction import redact

        return yaml.safe_dump(redact(self.model_dump(mode="json")), sort_keys=False)


# Flat names accepted by Sweeper(**kwargs), mapped to their key; FLAGS are the CLI's (--target-ci).
ALIASES = {
    "kind": "model.kind",
    "ladder": "model.ladder",
    "sizes": "model.sizes",
    "slices": "budgets.slices",
    "n_slices": "budgets.n_slices",
    "lr": "training.lr",
    "batch_size": "training.batch_size",
    "mixture": "training.mixture",
    "sim_law": "simulation.params",
    "noise": "simulation.noise",
    "law": "fit.law",
    "n_bootstrap": "fit.n_bootstrap",
    "target_ci": "fit.target_ci",
    "target_compute": "fit.target_compute",
    "target_n": "fit.target_n",
    "target_d": "fit.target_d",
    "patience": "fit.patience",
    "ray_address": "ray.address",
    "max_concurrent_trials": "ray.max_concurrent_trials",
    "tracking_uri": "tracking.uri",
    "experiment": "tracking.experiment",
}
FLAGS = (
    "budget",
    "seed",
    "design",
    "trainable",
    "kind",
    "sim_law",
    "noise",
    "law",
    "n_bootstrap",
    "target_ci",
    "target_compute",
    "target_n",
    "target_d",
    "experiment",
    "ray_address",
    "max_concurrent_trials",
)


def field_at(dotted: str):
    """The schema's FieldInfo of a dotted key (or flat alias)."""
    model, info = SweepConfig, None
    for part in ALIASES.get(dotted, dotted).split("."):
        info = model.model_fields[part]
        model = info.annotation
    return info


def resolve_space_path(space: str | os.PathLike) -> Path:
    """A space is a YAML path, or a name in the bundled search_spaces/."""
    path = Path(space)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise SweeperInputError("space", str(space), "no such file; give a path to a YAML search space")
        return path
    bundled = SPACES_DIR / f"{space}.yaml"
    if not bundled.exists():
        names = sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))
        raise SweeperInputError("space", str(space), f"use a YAML path or one of {names}")
    return bundled


def load_config(space: str | os.PathLike = "tiny", **overrides: Any) -> SweepConfig:
    """Load a search space and apply overrides (flat aliases or dotted keys)."""
    path = resolve_space_path(space)
    raw = read_space(path)
    raw.setdefault("space", path.stem)
    for name, value in overrides.items():
        if value is not None:
            _set_dotted(raw, ALIASES.get(name, name), value)
    return SweepConfig(**raw)


def read_space(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """A search space's YAML mapping, with the spaces it `extends` merged under it (its own keys win;
    mappings merge key by key, lists and values replace)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SweeperInputError(str(path), "<YAML>", f"fix the YAML syntax: {exc}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise SweeperInputError(
            str(path), type(raw).__name__, "a search space must be a YAML mapping of keys"
        )
    for key in raw:
        if not isinstance(key, str):  # `0:` loads as the int 0, and no setting is named by a number
            raise SweeperInputError(
                f"{path.name}: key {key!r}", key, "a search space's keys are setting names, e.g. budget:"
            )
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    base = path.parent / str(base_name)
    if not base.is_file():
        raise SweeperInputError(
            f"{path.name}: extends", base_name, "no such search space; give a YAML path relative to this file"
        )
    chain = (*chain, path.resolve())
    if base.resolve() in chain:
        loop = " -> ".join(p.name for p in (*chain, base.resolve()))
        raise SweeperInputError(
            f"{path.name}: extends", base_name, f"circular ({loop}); remove one of the extends"
        )
    return _merged(read_space(base, chain), raw)


def _merged(base: dict, own: dict) -> dict:
    out = dict(base)
    for name, value in own.items():
        both = isinstance(value, dict) and isinstance(out.get(name), dict)
        out[name] = _merged(out[name], value) if both else value
    return out


def _set_dotted(raw: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SweeperInputError(dotted, child, f"'{part}' must be a mapping to set '{dotted}'")
        node = child
    node[parts[-1]] = value


# pydantic's error types, in the words of this project's error contract
MESSAGES = {
    "int_from_float": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "float_parsing": "expected a number (float)",
    "float_type": "expected a number (float)",
    "finite_number": "expected a finite number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "model_type": "expected a mapping of keys",
    "dict_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
}


def input_error(exc: ValidationError, model: type | None = None) -> SweeperInputError:
    """The first problem of a ValidationError as SweeperInputError: dotted key, value, what is allowed."""
    err = exc.errors(include_url=False)[0]
    ctx = err.get("ctx") or {}
    if isinstance(ctx.get("error"), SweeperInputError):  # raised by a validator: already in words
        return ctx["error"]
    loc, model = list(err["loc"]), model or SweepConfig
    prefix = "" if model is SweepConfig else f"{model.__name__}."
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        allowed = sorted(_model_at(model, loc[:-1]).model_fields)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean '{_dotted([*loc[:-1], close[0]])}'? " if close else ""
        return SweeperInputError(prefix + _dotted(loc), value, f"unknown key; {hint}allowed keys: {allowed}")
    if kind == "missing" and loc and isinstance(loc[-1], int):  # a fixed-length list that is too short
        size = len(typing.get_args(_model_at(model, loc[:-2]).model_fields[loc[-2]].annotation))
        return SweeperInputError(
            prefix + _dotted(loc[:-1]), err.get("input"), f"expected a list of {size} values"
        )
    info = _model_at(model, loc[:-1]).model_fields.get(loc[-1]) if loc and isinstance(loc[-1], str) else None
    if kind == "too_long":
        fix = f"expected a list of {ctx['max_length']} values"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        fix = f"must be {_allowed_range(info.metadata if info else [], ctx)}"
    elif kind == "literal_error":
        fix = f"allowed values: {ctx['expected']}"
    else:
        fix = MESSAGES.get(kind, err["msg"])
    if info is not None and info.description and kind != "literal_error":
        fix += f" ({info.description})"
    return SweeperInputError(prefix + _dotted(loc) if loc else prefix.rstrip(".") or "config", value, fix)


def _allowed_range(metadata: list, ctx: dict) -> str:
    """A field's range in words: "positive", ">= 0", "in [0, 1)" (ctx: the failed bound, for list items)."""
    bounds = {
        name: getattr(m, name)
        for m in metadata
        for name in ("gt", "ge", "lt", "le")
        if getattr(m, name, None) is not None
    } or ctx
    low = f"[{bounds['ge']:g}" if "ge" in bounds else f"({bounds['gt']:g}" if "gt" in bounds else None
    high = f"{bounds['lt']:g})" if "lt" in bounds else f"{bounds['le']:g}]" if "le" in bounds else None
    if low and high:
        return f"in {low}, {high}"
    if bounds.get("gt") == 0 and not high:
        return "positive"
    words = {"gt": "greater than", "ge": ">=", "lt": "below", "le": "<="}
    return " and ".join(f"{words[name]} {value:g}" for name, value in bounds.items() if name in words)


def _model_at(model: type, loc: list) -> type:
    """The section (model class) that holds the key at `loc`."""
    for part in loc:
        if isinstance(part, str) and part in model.model_fields:
            annotation = model.model_fields[part].annotation
            models = [
                a
                for a in (annotation, *typing.get_args(annotation))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ]
            model = models[0] if models else model
    return model


def _dotted(loc: list) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def zero3_desynchronises(zero_stage: int, kind: str, text_weight: float) -> bool:
    """ZeRO-3 gathers parameters per module call, so every rank must call the same modules;
    an image model skips its image embedding on a text-only micro-batch (ZeRO-2 is covered
    by train.distributed.SameCallsOnEveryRank)."""
    return zero_stage == 3 and kind != "dense_text" and text_weight > 0


def _check_consistency(cfg: SweepConfig) -> None:
    """The rules that tie keys together (each key's own type and range are in the schema)."""
    budgets, training, fit = cfg.budgets, cfg.training, cfg.fit
    if sum(budgets.slices) > cfg.budget:
        raise SweeperInputError(
            "budgets.slices",
            list(budgets.slices),
            f"their sum exceeds the total budget {cfg.budget:.3g}; raise --budget or drop slices",
        )
    if budgets.max_tokens_per_param <= budgets.min_tokens_per_param:
        raise SweeperInputError(
            "budgets.max_tokens_per_param",
            budgets.max_tokens_per_param,
            "must exceed budgets.min_tokens_per_param",
        )
    if cfg.distributed.enabled and zero3_desynchronises(
        cfg.distributed.zero_stage, cfg.model.kind, training.mixture[2]
    ):
        raise SweeperInputError(
            "distributed.zero_stage",
            3,
            f"{cfg.model.kind} skips its image embedding on a "
            "text-only micro-batch and ZeRO-3 ranks must call the same modules: use "
            "zero_stage 2, or a mixture without text (training.mixture=[c, i, 0])",
        )
    if training.branching and training.cooldown_frac <= 0:
        raise SweeperInputError(
            "training.cooldown_frac",
            training.cooldown_frac,
            "cooldown branching needs a cooldown: set it above 0 (the paper uses 0.2) or branching: false",
        )
    if training.recipe == "fitted" and not training.recipe_run:
        raise SweeperInputError(
            "training.recipe_run", None, "recipe: fitted needs the MLflow run id of a `sweeper tune` job"
        )
    from sweeper.fit.registry import LAWS

    if fit.law not in LAWS:
        close = difflib.get_close_matches(fit.law, list(LAWS), n=1)
        raise SweeperInputError(
            "fit.law",
            fit.law,
            f"one of {', '.join(LAWS)}" + (f" (did you mean {close[0]}?)" if close else ""),
        )
    if "log_L_opt" in fit.watch:
        from sweeper.fit.derived import OPTIMUM_LAWS

        if fit.target_compute is None:
            raise SweeperInputError(
                "fit.watch",
                list(fit.watch),
                "log_L_opt is the prediction at "
                "fit.target_compute: set --target-compute C (the FLOPs you will train at) "
                "or drop log_L_opt",
            )
        if fit.law not in OPTIMUM_LAWS:
            raise SweeperInputError(
                "fit.watch",
                list(fit.watch),
                f"log_L_opt is defined for the laws "
                f"{', '.join(OPTIMUM_LAWS)}, not fit.law={fit.law}: change the law or drop "
                "log_L_opt",
            )
    _check_watched_tasks(cfg)
    if (fit.target_n is None) != (fit.target_d is None):
        raise SweeperInputError(
            "fit.target_n" if fit.target_n is None else "fit.target_d",
            None,
            "the prediction at a given model needs both its N (--target-n) and its D (--target-d)",
        )
    if fit.target_ci_log_L_opt is not None and "log_L_opt" not in fit.watch:
        raise SweeperInputError(
            "fit.target_ci_log_L_opt",
            fit.target_ci_log_L_opt,
            "it is the target of a "
            "watched log_L_opt: add log_L_opt to fit.watch (with fit.target_compute) or drop it",
        )
    _check_data(cfg)
    from sweeper.config.tune_space import (
        check_tune_section,  # the tune rules live beside the code that samples
    )

    check_tune_section(cfg.tune, kind=cfg.model.kind)


def _check_watched_tasks(cfg) -> None:
    """A watched task is an accuracy the trials score (which tasks they score, the plan checks)."""
    watched = [w for w in cfg.fit.watch if w.startswith("task.")]
    if watched and cfg.trainable != "torch":
        raise SweeperInputError(
            "fit.watch", list(cfg.fit.watch), "only trained trials score tasks: drop the task or train"
        )
    for name in watched:
        parts = name.split(".")
        if len(parts) != 3 or parts[2] != "accuracy" or not parts[1]:
            raise SweeperInputError("fit.watch", name, "watch a task's accuracy as task.<name>.accuracy")


SWEEP_LAWS = ("chinchilla",)  # the laws a sweep's own runs identify
# What the other laws need that one sweep (one ladder, one mixture) does not have
NOT_FROM_ONE_SWEEP = {
    "sparsity": "runs at two or more sparsities (a ladder has one expert count)",
    "compression": "each run's tokens per modality at two or more mixtures (a sweep trains one)",
}


def sweep_law(cfg: SweepConfig) -> tuple[SweepConfig, str]:
    """cfg with the law its sweep fits and places points for, and why, when that is not fit.law
    (the sweep says it once at the start and tags its MLflow run with it)."""
    if cfg.fit.law in SWEEP_LAWS:
        return cfg, ""
    needs = NOT_FROM_ONE_SWEEP.get(cfg.fit.law, "columns a sweep does not record")
    why = (
        f"fit.law={cfg.fit.law} needs {needs}: this sweep fits chinchilla and "
        f"places its points for it instead. Fit {cfg.fit.law} afterwards with `sweeper fit --law "
        f"{cfg.fit.law}` on a run table that has those columns"
    )
    return cfg.replace(fit=cfg.fit.replace(law=SWEEP_LAWS[0])), why


# The targets (caption, interleaved, text) each source can supply.
SOURCE_TARGETS = {
    "generated": TARGET_NAMES,
    "token_shards": ("text",),
    "hf_text": ("text",),
    "webdataset": ("caption",),
    "obelics": ("interleaved",),
}


def _check_data(cfg: SweepConfig) -> None:
    """What the `data:` section can be checked for without reading it (plan.check_data reads the files)."""
    d = cfg.data
    if d.source == "generated":
        return
    if cfg.distributed.enabled:
        raise SweeperInputError(
            "data.source",
            d.source,
            "the DeepSpeed path trains on generated data only for "
            "now: set distributed.enabled: false or data.source: generated",
        )
    weighted = [t for t, w in zip(TARGET_NAMES, cfg.training.mixture) if w > 0]
    if cfg.model.kind == "dense_text":  # a text-only model trains on text whatever the mixture says
        weighted = ["text"]
    if d.source == "mixture":
        _check_mixture(d, weighted, cfg.training.mixture)
        return
    _check_source(d, "data.", d.tokenizer)
    missing = [t for t in weighted if t not in SOURCE_TARGETS[d.source]]
    if missing and d.source in ("webdataset", "obelics") and cfg.model.kind == "dense_text":
        raise SweeperInputError(
            "model.kind", cfg.model.kind, f"{d.source} holds images: use early_fusion, late_fusion or moe"
        )
    if missing:
        only = [1 if t in SOURCE_TARGETS[d.source] else 0 for t in TARGET_NAMES]
        raise SweeperInputError(
            "training.mixture",
            list(cfg.training.mixture),
            f"{d.source} supplies "
            f"{' and '.join(SOURCE_TARGETS[d.source])} only: set training.mixture={only}, "
            "or give the other targets sources (data.source: mixture)",
        )


def _check_mixture(d: DataSection, weighted: list[str], mixture: Mixture) -> None:
    if not d.targets:
        raise SweeperInputError(
            "data.targets",
            {},
            "a mixture names a section per target, e.g. targets: {caption: "
            "{source: webdataset, path: ...}, text: {source: hf_text, path: ...}}",
        )
    for target, sub in d.targets.items():
        where = f"data.targets.{target}"
        if target not in TARGET_NAMES:
            raise SweeperInputError(where, target, f"unknown target; use {', '.join(TARGET_NAMES)}")
        if sub.source == "mixture" or sub.targets:
            raise SweeperInputError(
                f"{where}.source", sub.source, "a target's section is one source, not a mixture"
            )
        if target not in SOURCE_TARGETS[sub.source]:
            raise SweeperInputError(
                f"{where}.source",
                sub.source,
                f"it supplies {' and '.join(SOURCE_TARGETS[sub.source])}, not {target}",
            )
        if sub.source == "generated" and d.tokenizer:
            raise SweeperInputError(
                f"{where}.source",
                "generated",
                "generated data has its own character "
                f"vocabulary, which data.tokenizer's ids do not share; give {target} a "
                "real source",
            )
        _check_source(sub, f"{where}.", sub.tokenizer or d.tokenizer)
    for target in weighted:
        if target not in d.targets:
            weight = mixture[TARGET_NAMES.index(target)]
            raise SweeperInputError(
                "training.mixture",
                list(mixture),
                f"{target} has weight {weight:g} but "
                f"data.targets has no {target} source; add data.targets.{target} or set "
                "its weight to 0",
            )


def _check_source(d: DataSection, prefix: str, tokenizer: str | None) -> None:
    if d.source == "hf_text":
        if not d.path and not d.dataset:
            raise SweeperInputError(
                f"{prefix}path",
                d.path,
                "hf_text needs text: jsonl/parquet/text files (a "
                "file, a folder or a glob), or data.dataset naming a hub dataset",
            )
        if not tokenizer:
            raise SweeperInputError(
                f"{prefix}tokenizer",
                tokenizer,
                "hf_text needs a tokenizer.json: train "
                "one with `sweeper tokenizer --data PATH --vocab-size V -o tokenizer.json`",
            )
    elif d.source != "generated" and not d.path:
        raise SweeperInputError(
            f"{prefix}path",
            d.path,
            f"{d.source} needs its shards: a file, a folder of them or a glob (local path or fsspec URL)",
        )
