"""Sweep configuration: frozen keyword-only dataclasses, loaded from YAML.

A search space in `search_spaces/NAME.yaml` is read with `yaml.safe_load`,
then overridden from `Sweeper(**kwargs)` or CLI flags. Every key is checked
against the dataclass fields, so a typo or a bad value fails before Ray starts,
with an error naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from sweeper.errors import SweeperInputError

SPACES_DIR = Path(__file__).resolve().parent.parent / "search_spaces"
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"


@dataclass(frozen=True, kw_only=True)
class ModelSection:
    kind: str = "dense_text"
    ladder: str = "tiny"
    sizes: tuple[str, ...] = ()  # empty: every size of the ladder
    # Embedding rows. 0: the ladder's, or with data.tokenizer its vocabulary rounded up to a multiple of 64.
    vocab_size: int = 0


@dataclass(frozen=True, kw_only=True)
class BudgetSection:
    """isoFLOP slices: explicit `slices`, or `n_slices` geometric budgets `ratio` apart.

    With no explicit slices, the largest slice is the largest one for which the
    initial grid fits in the sweep's total budget.
    """

    slices: tuple[float, ...] = ()
    n_slices: int = 3
    ratio: float = 3.0
    min_tokens_per_param: float = 2.0
    max_tokens_per_param: float = 2000.0
    min_steps: int = 20


@dataclass(frozen=True, kw_only=True)
class TrainingSection:
    lr: float = 3e-3
    batch_size: int = 16
    warmup_frac: float = 0.05
    cooldown_frac: float = 0.2
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    mixture: tuple[float, float, float] = (0.45, 0.45, 0.10)  # caption, interleaved, text
    vision_lr_mult: float = 0.1
    aux_loss_weight: float = 0.01
    eval_every: int = 50
    eval_batches: int = 4
    # steps between trial checkpoints (Tune retries and Ray Train restarts resume from the last); 0: none
    checkpoint_every: int = 250
    # Cooldown branching: each trial continues its size's shared warmup-stable run
    # (snapshots in `branch_store`, default ./.sweeper/stable; shared storage on a cluster)
    # and trains only its own cooldown plus the stable steps no shorter point needed.
    branching: bool = False
    branch_store: str | None = None
    # Where each trial's lr, batch and warmup come from: these fixed values, the
    # reference's Table 6 ("paper"; the tiny ladder's hand recipe for tiny sizes), or a
    # hyperparameter law fitted by `sweeper tune` ("fitted", from MLflow run `recipe_run`).
    recipe: Literal["fixed", "paper", "fitted"] = "fixed"
    recipe_run: str | None = None


@dataclass(frozen=True, kw_only=True)
class DimensionSection:
    """One hyperparameter dimension of a `tune.space`: a distribution and its bounds.

    loguniform/uniform: low <= x <= high (floats); int/logint: whole numbers,
    both bounds included; choice: one of `values`.
    """

    dist: Literal["loguniform", "uniform", "int", "logint", "choice"] | None = None
    low: float | None = None
    high: float | None = None
    values: tuple[Any, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TuneSection:
    """`sweeper tune`: a hyperparameter search per rung, and hyperparameter laws across rungs."""

    space: dict[str, DimensionSection] = field(default_factory=dict)
    sampler: str = "TPESampler"  # any optuna.samplers class that takes only a seed
    n_trials: int = 12  # per rung
    # Random proposals before a model-based sampler (TPE, GP, CMA-ES) starts modelling; 0: a
    # third of n_trials, at least 3 (Optuna's default of 10 makes a 10-trial TPE pure random search).
    n_startup_trials: int = 0
    scheduler: Literal["asha", "none"] = "asha"
    time_attr: Literal["tokens", "step"] = "tokens"
    grace_frac: float = 0.2  # ASHA's first decision after this fraction of a rung's tokens
    reduction_factor: float = 3.0
    # ASHA decides on the loss of a short cooldown branched off each trial at its milestones
    # (sweeper.train.loop.cooled_metrics): mid-run WSD losses at peak LR favour small LRs.
    cooled_decisions: bool = True
    rungs: Literal["ladder", "plan"] = "ladder"  # one point per size at tokens_per_param, or the isoFLOP plan's points
    sizes: tuple[str, ...] = ()  # empty: every size of the model section
    tokens_per_param: float = 20.0
    scale_with: Literal["C", "N"] = "C"  # the x of the fitted hyperparameter laws
    near_optimal: float = 0.01  # trials within this relative loss of a rung's best are near-optimal
    mixtures: tuple[str, ...] = ()  # a mixture sweep: one isoFLOP sweep per named mixture


@dataclass(frozen=True, kw_only=True)
class SimulationSection:
    """The simulated trainable: loss from a known law plus multiplicative noise."""

    law: str = "chinchilla"
    params: dict[str, float] = field(
        default_factory=lambda: {"E": 1.9, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.37}
    )
    noise: float = 0.005


@dataclass(frozen=True, kw_only=True)
class FitSection:
    law: str = "chinchilla"
    n_bootstrap: int = 50
    target: str = "loss"
    watch: tuple[str, ...] = ("a", "b")
    target_ci: float = 0.02
    patience: int = 2
    # The compute the law will be used at. Every fit then carries log_L_opt, the log of the
    # predicted compute-optimal loss there; watch it to stop only once that prediction is
    # pinned too (a, b can converge on cheap points that extrapolate badly).
    target_compute: float | None = None


@dataclass(frozen=True, kw_only=True)
class RaySection:
    address: str | None = None  # None: start a local Ray; "auto": join the cluster
    max_concurrent_trials: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    # Tune's trial state and Ray Train's checkpoints; None: ./.sweeper/ray_results and ./.sweeper/train_results
    # (on a multi-node cluster a path every node sees: NFS, s3://)
    storage_path: str | None = None
    # retries of a crashed trial (Tune FailureConfig) and of a distributed trial's worker group (Ray Train),
    # from its last checkpoint; a trial that still fails is recorded failed
    max_failures: int = 1
    dashboard: bool = False  # local Ray only; it binds to dashboard_host
    dashboard_host: str = "127.0.0.1"


@dataclass(frozen=True, kw_only=True)
class DistributedSection:
    """Trials at or above `min_params_for_distributed` train as a Ray Train TorchTrainer
    with DeepSpeed ZeRO; smaller ones keep the single-process path."""

    enabled: bool = False
    workers: int = 2
    zero_stage: int = 0
    use_gpu: bool = False  # bf16 + NCCL on GPU; fp32 + gloo on CPU
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 1.0  # only when use_gpu
    micro_batch_size: int = 0  # sequences per worker per micro-step; 0: the whole per-worker share
    min_params_for_distributed: int = 0  # N at and above which a trial goes distributed


@dataclass(frozen=True, kw_only=True)
class DataSection:
    """Where trials' training data comes from.

    `generated` (the default): procedural image-caption, interleaved and text documents, nothing
    on disk. `token_shards`: pre-tokenized text, flat uint16/uint32 `.bin` arrays (the nanoGPT /
    Megatron convention) at `path`: one file, a folder of them or a glob, local or any fsspec URL.
    `hf_text`: the `text_field` column of a Hugging Face `datasets` source (jsonl/parquet/text/csv/
    arrow files at `path`, or the hub dataset `dataset` where the cluster is online), tokenized with
    the `tokenizers` file `tokenizer` into token shards cached under `cache_dir`.
    `webdataset`: image-caption pairs in tar shards at `path` (img2dataset's layout: .jpg/.png with
    .txt/.json per key), captions tokenized with `tokenizer` (None: the generated data's characters).
    `obelics`: interleaved image-text documents, rows of `texts` and `images` (bytes) lists aligned by
    position, in parquet/jsonl/arrow files at `path`, read with `datasets`, tokenized like captions.
    Held out for validation: the data at `val_path`, else the last `val_sequences` windows (pairs,
    documents) of `path`.
    `mixture`: each target (caption, interleaved, text) from its own section in `targets`, weighed by
    training.mixture and validated on its own held-out data; `tokenizer` and `cache_dir` apply to all.
    """

    source: Literal["generated", "token_shards", "hf_text", "webdataset", "obelics", "mixture"] = "generated"
    path: str | None = None
    dtype: Literal["uint16", "uint32"] = "uint16"
    val_path: str | None = None
    val_sequences: int = 64
    dataset: str | None = None  # hf_text: a datasets builder (json, parquet...) or hub name; None: from `path`
    text_field: str = "text"
    split: str = "train"  # hf_text from the hub
    tokenizer: str | None = None  # hf_text: a tokenizer.json (`sweeper tokenizer` trains one)
    cache_dir: str | None = None  # hf_text: where tokenized shards are kept; None: ./.sweeper/tokenized
    # webdataset/obelics: an image that does not decode is skipped and counted, or (error) fails the plan naming it
    bad_images: Literal["skip", "error"] = "skip"
    targets: dict[str, DataSection] = field(default_factory=dict)  # source: mixture
    # DataLoader processes building each trial's training batches (sweeper.data.loader); 0: in the trial's
    # process (CPU trials, whose cores train). On a GPU node 1-4, and add them to ray.cpus_per_trial.
    loader_workers: int = 0


@dataclass(frozen=True, kw_only=True)
class TrackingSection:
    uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else the SQLite store under ./mlruns
    experiment: str | None = None  # None: "sweeper-<space>"
    outage_timeout_s: float = 600.0  # at the end, how long to wait for an unreachable MLflow before giving up


def resolve_tracking_uri(uri: str | None) -> str:
    """The given URI, else $MLFLOW_TRACKING_URI, else the embedded SQLite store."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


@dataclass(frozen=True, kw_only=True)
class SweepConfig:
    space: str = "tiny"
    budget: float = 1e13  # total FLOPs the sweep may spend
    seed: int = 0
    design: Literal["grid", "adaptive"] = "adaptive"
    trainable: Literal["torch", "simulated"] = "torch"
    throughput_flops: float = 2e9  # assumed FLOP/s per trial, for wall-time estimates only
    resume: bool = False
    model: ModelSection = field(default_factory=ModelSection)
    budgets: BudgetSection = field(default_factory=BudgetSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    simulation: SimulationSection = field(default_factory=SimulationSection)
    fit: FitSection = field(default_factory=FitSection)
    ray: RaySection = field(default_factory=RaySection)
    tracking: TrackingSection = field(default_factory=TrackingSection)
    distributed: DistributedSection = field(default_factory=DistributedSection)
    data: DataSection = field(default_factory=DataSection)
    tune: TuneSection = field(default_factory=TuneSection)

    def __post_init__(self) -> None:
        _check_values(self)

    @property
    def tracking_uri(self) -> str:
        return resolve_tracking_uri(self.tracking.uri)

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or f"sweeper-{self.space}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """The fully resolved search space, defaults included: `load_config` of it gives this config back
        (credentials in URIs are masked: they are never written)."""
        from sweeper.redaction import redact

        def plain(value):
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value

        return yaml.safe_dump(plain(redact(self.to_dict())), sort_keys=False)


# Flat names accepted by Sweeper(**kwargs) and CLI flags, mapped to their field.
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
    "patience": "fit.patience",
    "ray_address": "ray.address",
    "max_concurrent_trials": "ray.max_concurrent_trials",
    "tracking_uri": "tracking.uri",
    "experiment": "tracking.experiment",
}


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
    for key, value in overrides.items():
        if value is not None:
            _set_dotted(raw, ALIASES.get(key, key), value)
    return build(SweepConfig, raw, prefix="")


def read_space(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """A search space's YAML mapping, with the spaces it `extends` merged under it (its own keys win;
    mappings merge key by key, lists and values replace)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SweeperInputError(str(path), "<YAML>", f"fix the YAML syntax: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SweeperInputError(str(path), type(raw).__name__, "a search space must be a YAML mapping of keys")
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    base = path.parent / str(base_name)
    if not base.is_file():
        raise SweeperInputError(f"{path.name}: extends", base_name, "no such search space; give a YAML path "
                                "relative to this file")
    chain = (*chain, path.resolve())
    if base.resolve() in chain:
        loop = " -> ".join(p.name for p in (*chain, base.resolve()))
        raise SweeperInputError(f"{path.name}: extends", base_name, f"circular ({loop}); remove one of the extends")
    return _merged(read_space(base, chain), raw)


def _merged(base: dict, own: dict) -> dict:
    out = dict(base)
    for key, value in own.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
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


def build(cls: type, raw: Any, prefix: str) -> Any:
    """Build dataclass `cls` from a mapping, checking keys and converting types."""
    where = prefix.rstrip(".") or "config"
    if not isinstance(raw, dict):
        raise SweeperInputError(where, raw, "expected a mapping of keys")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), sorted(fields), n=1)
        hint = f"did you mean '{prefix}{close[0]}'? " if close else ""
        raise SweeperInputError(f"{prefix}{unknown[0]}", raw[unknown[0]],
                                f"unknown key; {hint}allowed keys: {sorted(fields)}")
    kwargs = {name: _convert(hints[name], value, f"{prefix}{name}") for name, value in raw.items()}
    return cls(**kwargs)


def _convert(hint: Any, value: Any, name: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return build(hint, value, prefix=f"{name}.")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is getattr(__import__("types"), "UnionType", None):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, name)
    if origin is Literal:
        if value not in args:
            raise SweeperInputError(name, value, f"allowed values: {list(args)}")
        return value
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise SweeperInputError(name, value, "expected a list")
        item = args[0]
        if len(args) > 1 and args[1] is not Ellipsis and len(value) != len(args):
            raise SweeperInputError(name, value, f"expected a list of {len(args)} values")
        return tuple(_convert(item, v, f"{name}[{i}]") for i, v in enumerate(value))
    if origin is dict and len(args) == 2 and dataclasses.is_dataclass(args[1]):
        if not isinstance(value, dict):
            raise SweeperInputError(name, value, "expected a mapping of names to sections")
        return {str(k): build(args[1], v, prefix=f"{name}.{k}.") for k, v in value.items()}
    if origin is dict:
        return _convert_mapping(value, name)
    return _convert_scalar(hint, value, name)


def _convert_mapping(value: Any, name: str) -> dict[str, float]:
    if isinstance(value, str):  # "E=1.9,A=400" from the command line
        try:
            value = dict(part.split("=", 1) for part in value.split(",") if part.strip())
        except ValueError:
            raise SweeperInputError(name, value, "write it as KEY=VALUE pairs separated by commas") from None
    if not isinstance(value, dict):
        raise SweeperInputError(name, value, "expected a mapping of names to numbers")
    return {str(k).strip(): _convert_scalar(float, v, f"{name}.{k}") for k, v in value.items()}


def _convert_scalar(hint: Any, value: Any, name: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise SweeperInputError(name, value, "expected true or false")
    if hint in (int, float):
        if isinstance(value, bool):
            raise SweeperInputError(name, value, f"expected a number ({hint.__name__})")
        try:
            number = float(value) if isinstance(value, str) else value
            if not isinstance(number, (int, float)):
                raise TypeError
        except (TypeError, ValueError):
            raise SweeperInputError(name, value, f"expected a number ({hint.__name__})") from None
        if not math.isfinite(number):
            raise SweeperInputError(name, value, "expected a finite number")
        if hint is int:
            if number != int(number):
                raise SweeperInputError(name, value, "expected a whole number")
            return int(number)
        return float(number)
    if hint is str:
        if not isinstance(value, str) or not value:
            raise SweeperInputError(name, value, "expected a non-empty string")
        return value
    return value


def zero3_desynchronises(zero_stage: int, kind: str, text_weight: float) -> bool:
    """ZeRO-3 gathers parameters per module call, so every rank must call the same modules;
    an image model skips its image embedding on a text-only micro-batch (ZeRO-2 is covered
    by train.distributed.SameCallsOnEveryRank)."""
    return zero_stage == 3 and kind != "dense_text" and text_weight > 0


def _check_values(cfg: SweepConfig) -> None:
    """Range checks that types alone cannot express."""
    positive = {
        "budget": cfg.budget,
        "throughput_flops": cfg.throughput_flops,
        "budgets.ratio": cfg.budgets.ratio - 1.0,
        "budgets.n_slices": cfg.budgets.n_slices,
        "budgets.min_steps": cfg.budgets.min_steps,
        "budgets.min_tokens_per_param": cfg.budgets.min_tokens_per_param,
        "training.lr": cfg.training.lr,
        "training.batch_size": cfg.training.batch_size,
        "training.eval_every": cfg.training.eval_every,
        "training.eval_batches": cfg.training.eval_batches,
        "ray.max_concurrent_trials": cfg.ray.max_concurrent_trials,
        "ray.cpus_per_trial": cfg.ray.cpus_per_trial,
        "fit.target_ci": cfg.fit.target_ci,
        "fit.patience": cfg.fit.patience,
    }
    for name, value in positive.items():
        if value <= 0:
            shown = value + 1.0 if name == "budgets.ratio" else value
            need = "greater than 1" if name == "budgets.ratio" else "positive"
            raise SweeperInputError(name, shown, f"must be {need}")
    for i, c in enumerate(cfg.budgets.slices):
        if c <= 0:
            raise SweeperInputError(f"budgets.slices[{i}]", c, "slice budgets must be positive FLOPs")
    if sum(cfg.budgets.slices) > cfg.budget:
        raise SweeperInputError("budgets.slices", list(cfg.budgets.slices), f"their sum exceeds the total budget {cfg.budget:.3g}; raise --budget or drop slices")
    if cfg.budgets.max_tokens_per_param <= cfg.budgets.min_tokens_per_param:
        raise SweeperInputError("budgets.max_tokens_per_param", cfg.budgets.max_tokens_per_param, "must exceed budgets.min_tokens_per_param")
    _check_fractions(cfg.training)
    if cfg.simulation.noise < 0:
        raise SweeperInputError("simulation.noise", cfg.simulation.noise, "must be >= 0")
    if cfg.distributed.zero_stage not in (0, 1, 2, 3):
        raise SweeperInputError("distributed.zero_stage", cfg.distributed.zero_stage, "use 0, 1, 2 or 3")
    if cfg.distributed.workers < 1:
        raise SweeperInputError("distributed.workers", cfg.distributed.workers, "must be at least 1")
    if cfg.distributed.enabled and zero3_desynchronises(cfg.distributed.zero_stage, cfg.model.kind,
                                                          cfg.training.mixture[2]):  # before any trial starts
        raise SweeperInputError("distributed.zero_stage", 3, f"{cfg.model.kind} skips its image embedding on a "
                                "text-only micro-batch and ZeRO-3 ranks must call the same modules: use zero_stage 2, "
                                "or a mixture without text (training.mixture=[c, i, 0])")
    _check_data(cfg)
    if cfg.training.branching and cfg.training.cooldown_frac <= 0:
        raise SweeperInputError("training.cooldown_frac", cfg.training.cooldown_frac,
                                "cooldown branching needs a cooldown: set it above 0 (the paper uses 0.2) or branching: false")
    if cfg.training.checkpoint_every < 0:
        raise SweeperInputError("training.checkpoint_every", cfg.training.checkpoint_every, "must be >= 0 (0: no trial checkpoints)")
    if cfg.ray.max_failures < 0:
        raise SweeperInputError("ray.max_failures", cfg.ray.max_failures, "must be >= 0")
    if cfg.fit.n_bootstrap < 0:
        raise SweeperInputError("fit.n_bootstrap", cfg.fit.n_bootstrap, "must be >= 0")
    if cfg.fit.target_compute is not None and not cfg.fit.target_compute > 0:
        raise SweeperInputError("fit.target_compute", cfg.fit.target_compute, "must be positive FLOPs, or unset")
    if "log_L_opt" in cfg.fit.watch:
        from sweeper.fit.derived import OPTIMUM_LAWS

        if cfg.fit.target_compute is None:
            raise SweeperInputError("fit.watch", list(cfg.fit.watch), "log_L_opt is the prediction at "
                                    "fit.target_compute: set --target-compute C (the FLOPs you will train at) or "
                                    "drop log_L_opt")
        if cfg.fit.law not in OPTIMUM_LAWS:
            raise SweeperInputError("fit.watch", list(cfg.fit.watch), f"log_L_opt is defined for the laws "
                                    f"{', '.join(OPTIMUM_LAWS)}, not fit.law={cfg.fit.law}: change the law or drop log_L_opt")
    if cfg.training.recipe == "fitted" and not cfg.training.recipe_run:
        raise SweeperInputError("training.recipe_run", None, "recipe: fitted needs the MLflow run id of a `sweeper tune` job")
    # The tune-space rules live beside the code that samples from them.
    from sweeper.tuning.space import check_tune_section

    check_tune_section(cfg.tune, kind=cfg.model.kind)


# The targets (caption, interleaved, text) each source can supply.
SOURCE_TARGETS = {"generated": ("caption", "interleaved", "text"), "token_shards": ("text",), "hf_text": ("text",),
                  "webdataset": ("caption",), "obelics": ("interleaved",)}
TARGET_NAMES = ("caption", "interleaved", "text")


def _check_data(cfg: SweepConfig) -> None:
    """What the `data:` section can be checked for without reading it (plan.check_data reads the files)."""
    d = cfg.data
    if cfg.model.vocab_size < 0:
        raise SweeperInputError("model.vocab_size", cfg.model.vocab_size, "use 0 (from the ladder or tokenizer) "
                                "or a positive number of embedding rows")
    if d.loader_workers < 0:
        raise SweeperInputError("data.loader_workers", d.loader_workers, "use 0 (batches built in the trial's "
                                "process) or a number of DataLoader worker processes")
    if d.source == "generated":
        return
    weighted = [t for t, w in zip(TARGET_NAMES, cfg.training.mixture) if w > 0]
    if cfg.model.kind == "dense_text":  # a text-only model trains on text whatever the mixture says
        weighted = ["text"]
    if d.source == "mixture":
        _check_mixture(d, weighted, cfg.training.mixture)
    else:
        _check_source(d, "data.", d.tokenizer)
        missing = [t for t in weighted if t not in SOURCE_TARGETS[d.source]]
        if missing and d.source in ("webdataset", "obelics") and cfg.model.kind == "dense_text":
            raise SweeperInputError("model.kind", cfg.model.kind, f"{d.source} holds images: use "
                                    "early_fusion, late_fusion or moe")
        if missing:
            only = [1 if t in SOURCE_TARGETS[d.source] else 0 for t in TARGET_NAMES]
            raise SweeperInputError("training.mixture", list(cfg.training.mixture), f"{d.source} supplies "
                                    f"{' and '.join(SOURCE_TARGETS[d.source])} only: set training.mixture={only}, "
                                    "or give the other targets sources (data.source: mixture)")
    if cfg.distributed.enabled:
        raise SweeperInputError("data.source", d.source, "the DeepSpeed path trains on generated data only for now: "
                                "set distributed.enabled: false or data.source: generated")


def _check_mixture(d: DataSection, weighted: list[str], mixture) -> None:
    if not d.targets:
        raise SweeperInputError("data.targets", {}, "a mixture names a section per target, e.g. targets: "
                                "{caption: {source: webdataset, path: ...}, text: {source: hf_text, path: ...}}")
    for target, sub in d.targets.items():
        where = f"data.targets.{target}"
        if target not in TARGET_NAMES:
            raise SweeperInputError(where, target, f"unknown target; use {', '.join(TARGET_NAMES)}")
        if sub.source == "mixture" or sub.targets:
            raise SweeperInputError(f"{where}.source", sub.source, "a target's section is one source, not a mixture")
        if target not in SOURCE_TARGETS[sub.source]:
            raise SweeperInputError(f"{where}.source", sub.source, f"it supplies {' and '.join(SOURCE_TARGETS[sub.source])}"
                                    f", not {target}")
        if sub.source == "generated" and d.tokenizer:
            raise SweeperInputError(f"{where}.source", "generated", "generated data has its own character vocabulary, "
                                    f"which data.tokenizer's ids do not share; give {target} a real source")
        _check_source(sub, f"{where}.", sub.tokenizer or d.tokenizer)
    for target in weighted:
        if target not in d.targets:
            weight = mixture[TARGET_NAMES.index(target)]
            raise SweeperInputError("training.mixture", list(mixture), f"{target} has weight {weight:g} but "
                                    f"data.targets has no {target} source; add data.targets.{target} or set its "
                                    "weight to 0")


def _check_source(d: DataSection, prefix: str, tokenizer: str | None) -> None:
    if d.source == "generated":
        return
    if d.source == "hf_text":
        if not d.path and not d.dataset:
            raise SweeperInputError(f"{prefix}path", d.path, "hf_text needs text: jsonl/parquet/text files (a file, "
                                    "a folder or a glob), or data.dataset naming a hub dataset")
        if not tokenizer:
            raise SweeperInputError(f"{prefix}tokenizer", tokenizer, "hf_text needs a tokenizer.json: train one "
                                    "with `sweeper tokenizer --data PATH --vocab-size V -o tokenizer.json`")
    elif not d.path:
        raise SweeperInputError(f"{prefix}path", d.path, f"{d.source} needs its shards: a file, a folder of them "
                                "or a glob (local path or fsspec URL)")
    if d.val_path is None and d.val_sequences < 1:
        raise SweeperInputError(f"{prefix}val_sequences", d.val_sequences,
                                "hold out at least 1 sequence, or set val_path")


def _check_fractions(t: TrainingSection) -> None:
    for name in ("warmup_frac", "cooldown_frac"):
        value = getattr(t, name)
        if not 0 <= value < 1:
            raise SweeperInputError(f"training.{name}", value, "must be in [0, 1)")
    if t.warmup_frac + t.cooldown_frac >= 1:
        raise SweeperInputError("training.cooldown_frac", t.cooldown_frac, "warmup_frac + cooldown_frac must be below 1")
    if any(w < 0 for w in t.mixture) or sum(t.mixture) <= 0:
        raise SweeperInputError("training.mixture", list(t.mixture), "weights (caption, interleaved, text) must be >= 0 and not all zero")
    for name in ("weight_decay", "grad_clip"):
        if getattr(t, name) < 0:
            raise SweeperInputError(f"training.{name}", getattr(t, name), "must be >= 0")
