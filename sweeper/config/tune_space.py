"""Search-space dimensions: what may be tuned, with which distribution, and how a
sampled value becomes a training hyperparameter.

A dimension is plain data in the YAML (`tune.space.lr: {dist: loguniform, low:
1e-4, high: 1e-2}`); this module checks it (bounds, names, the model kind it
applies to) and turns it into a Ray Tune domain, which OptunaSearch maps to an
Optuna distribution.
"""

from __future__ import annotations

import math
import re
from typing import Any

from sweeper.errors import SweeperInputError

TARGETS = ("caption", "interleaved", "text")
# name -> (lowest allowed value, highest allowed value or None, upper bound excluded?, what it is)
DIMENSIONS: dict[str, tuple[float, float | None, bool, str]] = {
    "lr": (0.0, None, False, "peak learning rate"),
    "batch_tokens": (1.0, None, False, "tokens per optimizer step (rounded to whole sequences)"),
    "batch_size": (1.0, None, False, "sequences per optimizer step"),
    "warmup_frac": (0.0, 1.0, True, "warmup as a fraction of the steps"),
    "warmup_steps": (0.0, None, False, "warmup steps"),
    "cooldown_frac": (0.0, 1.0, True, "cooldown as a fraction of the steps"),
    "weight_decay": (0.0, None, False, "decoupled weight decay"),
    "grad_clip": (0.0, None, False, "gradient-norm clip"),
    "mixture": (0.0, None, False, "data mixture (choice of names like 45-45-10)"),
    **{f"mixture.{t}": (0.0, None, False, f"unnormalised {t} weight of the mixture") for t in TARGETS},
    "vision_lr_mult": (0.0, None, False, "late fusion: vision-encoder LR multiplier"),
    "aux_loss_weight": (0.0, None, False, "MoE load-balancing loss weight"),
}
ONLY_FOR_KIND = {"vision_lr_mult": ("late_fusion",), "aux_loss_weight": ("moe",)}
MULTIMODAL = ("early_fusion", "late_fusion", "moe")
INTEGER_DIMS = ("batch_tokens", "batch_size", "warmup_steps")
MIXTURE_LABEL = re.compile(r"^\d+(\.\d+)?-\d+(\.\d+)?-\d+(\.\d+)?$")


def mixture_weights(label: str, where: str = "mixture") -> tuple[float, float, float]:
    """'45-45-10' -> (0.45, 0.45, 0.10): caption, interleaved, text, normalised."""
    if not isinstance(label, str) or not MIXTURE_LABEL.match(label):
        raise SweeperInputError(
            where, label, "write a mixture as caption-interleaved-text percentages, e.g. 45-45-10"
        )
    parts = [float(x) for x in label.split("-")]
    if sum(parts) <= 0:
        raise SweeperInputError(where, label, "the weights must not all be zero")
    return tuple(p / sum(parts) for p in parts)  # type: ignore[return-value]


def mixture_label(weights) -> str:
    total = sum(weights)
    return "-".join(f"{100 * w / total:.4g}" for w in weights)


def check_dimension(name: str, dim, *, kind: str) -> None:
    """Raise SweeperInputError naming `tune.space.NAME` and what to do when `dim` is unusable."""
    where = f"tune.space.{name}"
    if name not in DIMENSIONS:
        raise SweeperInputError(where, name, f"unknown hyperparameter; tunable ones: {sorted(DIMENSIONS)}")
    allowed = ONLY_FOR_KIND.get(name)
    if allowed and kind not in allowed:
        raise SweeperInputError(
            where, kind, f"{name} only affects {', '.join(allowed)} models; drop it for kind {kind!r}"
        )
    if (name == "mixture" or name.startswith("mixture.")) and kind not in MULTIMODAL:
        raise SweeperInputError(where, kind, "a text-only model has no mixture to tune")
    if dim.dist is None:
        raise SweeperInputError(
            f"{where}.dist", None, "give a distribution: loguniform, uniform, int, logint or choice"
        )
    if dim.dist == "choice":
        _check_choice(name, dim, where)
        return
    if dim.values:
        raise SweeperInputError(
            f"{where}.values", list(dim.values), f"values are for dist: choice; {dim.dist} takes low and high"
        )
    if name == "mixture":
        raise SweeperInputError(
            f"{where}.dist",
            dim.dist,
            "tune a whole mixture with dist: choice, or one weight as mixture.caption etc.",
        )
    for bound in ("low", "high"):
        if getattr(dim, bound) is None:
            raise SweeperInputError(f"{where}.{bound}", None, f"{dim.dist} needs both low and high")
    low, high = dim.low, dim.high
    if not low < high:
        raise SweeperInputError(f"{where}.high", high, f"must exceed low ({low:g})")
    if dim.dist in ("loguniform", "logint") and low <= 0:
        raise SweeperInputError(f"{where}.low", low, f"{dim.dist} needs low > 0; use uniform to include zero")
    if dim.dist in ("int", "logint") and (low != int(low) or high != int(high)):
        raise SweeperInputError(where, [low, high], f"{dim.dist} needs whole-number bounds")
    if name in INTEGER_DIMS and dim.dist in ("uniform", "loguniform"):
        raise SweeperInputError(f"{where}.dist", dim.dist, f"{name} is a whole number; use int or logint")
    for bound, value in (("low", low), ("high", high)):
        _check_range(name, value, f"{where}.{bound}")


def _check_choice(name: str, dim, where: str) -> None:
    if dim.low is not None or dim.high is not None:
        raise SweeperInputError(where, [dim.low, dim.high], "choice takes values, not low/high")
    values = list(dim.values)
    if not values:
        raise SweeperInputError(f"{where}.values", values, "choice needs at least one value")
    for i, value in enumerate(values):
        if name == "mixture":
            mixture_weights(as_mixture_label(value, f"{where}.values[{i}]"), f"{where}.values[{i}]")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SweeperInputError(f"{where}.values[{i}]", value, f"{name} takes numbers")
        if name in INTEGER_DIMS and value != int(value):
            raise SweeperInputError(f"{where}.values[{i}]", value, f"{name} is a whole number")
        _check_range(name, value, f"{where}.values[{i}]")
    labels = [str(v) for v in values]
    if len(set(labels)) != len(labels):
        raise SweeperInputError(f"{where}.values", values, "values repeat; list each once")


def as_mixture_label(value: Any, where: str = "mixture") -> str:
    """A mixture given as a label ('45-45-10') or three weights, as a label."""
    if isinstance(value, str):
        return value
    if (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and all(isinstance(v, (int, float)) for v in value)
    ):
        if min(value) < 0 or sum(value) <= 0:
            raise SweeperInputError(where, list(value), "weights must be >= 0 and not all zero")
        return mixture_label(value)
    raise SweeperInputError(
        where, value, "a mixture is a label like 45-45-10 or three weights (caption, interleaved, text)"
    )


def _check_range(name: str, value: float, where: str) -> None:
    lowest, highest, open_top, what = DIMENSIONS[name]
    too_low = value < lowest or (
        value == lowest and name in ("lr", "grad_clip", "batch_tokens", "batch_size")
    )
    too_high = highest is not None and (value >= highest if open_top else value > highest)
    if too_low or too_high:
        rng = (
            f"[{lowest:g}, {highest:g}{')' if open_top else ']'}" if highest is not None else f">= {lowest:g}"
        )
        if name in ("lr", "grad_clip"):
            rng = "> 0"
        raise SweeperInputError(where, value, f"{name} ({what}) must be {rng}")


def check_tune_section(tune, *, kind: str) -> None:
    """The rules on the tune section that the schema's types and ranges cannot express."""
    for name, dim in tune.space.items():
        check_dimension(name, dim, kind=kind)
    if "batch_tokens" in tune.space and "batch_size" in tune.space:
        raise SweeperInputError(
            "tune.space.batch_size", "batch_size", "tune batch_tokens or batch_size, not both"
        )
    mixture_dims = [n for n in tune.space if n.startswith("mixture")]
    if "mixture" in tune.space and len(mixture_dims) > 1:
        raise SweeperInputError(
            "tune.space.mixture", mixture_dims, "tune the mixture as a choice or as weights, not both"
        )
    if not tune.sampler.isidentifier():
        raise SweeperInputError("tune.sampler", tune.sampler, "name an Optuna sampler class, e.g. TPESampler")
    for i, m in enumerate(tune.mixtures):
        mixture_weights(as_mixture_label(m, f"tune.mixtures[{i}]"), f"tune.mixtures[{i}]")


def ray_domain(dim):
    """The Ray Tune domain for a checked dimension (integer bounds are inclusive here)."""
    from ray import tune

    if dim.dist == "loguniform":
        return tune.loguniform(dim.low, dim.high)
    if dim.dist == "uniform":
        return tune.uniform(dim.low, dim.high)
    if dim.dist == "int":
        return tune.randint(int(dim.low), int(dim.high) + 1)
    if dim.dist == "logint":
        return tune.lograndint(int(dim.low), int(dim.high) + 1)
    return tune.choice([as_mixture_label(v) if isinstance(v, (list, tuple)) else v for v in dim.values])


def search_space(tune_section) -> dict[str, Any]:
    """{dimension name: Ray domain}; names with dots stay flat (they are keys, not paths)."""
    return {name.replace(".", "_"): ray_domain(dim) for name, dim in tune_section.space.items()}


def apply_sample(hparams: dict, sample: dict, *, seq_len: int) -> dict:
    """Training hyperparameters with the sampled values of a trial applied."""
    hp = dict(hparams)
    weights = dict(zip(TARGETS, hp.get("mixture") or (0.45, 0.45, 0.10)))
    for key, value in sample.items():
        name = key.replace("mixture_", "mixture.") if key.startswith("mixture_") else key
        if name == "batch_tokens":
            hp["batch_size"] = max(1, int(round(float(value) / seq_len)))
        elif name == "mixture":
            weights = dict(zip(TARGETS, mixture_weights(str(value))))
        elif name.startswith("mixture."):
            weights[name.split(".", 1)[1]] = float(value)
        elif name == "warmup_steps":
            hp["warmup_steps"] = int(value)
        elif name == "batch_size":
            hp["batch_size"] = int(value)
        else:
            hp[name] = float(value)
    if "mixture" in hp or any(k.startswith("mixture") for k in sample):
        total = sum(weights.values())
        if total <= 0:
            raise SweeperInputError(
                "mixture", weights, "sampled mixture weights are all zero; raise the lower bounds"
            )
        hp["mixture"] = tuple(weights[t] / total for t in TARGETS)
    return hp
