"""Training recipes, resolved in one place for the planner and every trainable.

Where each trial's learning rate, batch and warmup come from.

- fixed:  the training section's values, for every point (the old behaviour).
- paper:  the reference's Table 6 (LR by width, 2M-token batch, 1k/2.5k/5k warmup)
          for paper-ladder sizes; the tiny ladder's hand recipe for tiny sizes.
- fitted: the hyperparameter laws a `sweeper tune` job fitted (lr = K C^a, batch
          tokens = K_b C^b, or in N), read once from that job's MLflow run
          (`training.recipe_run`); what the laws do not cover comes from `paper`.

Everything else (weight decay, clip, mixture, evaluation) comes from the
training section. The recipe's name and run are recorded on every trial as the
`hp.recipe` / `hp.recipe_run` params.

The per-size tables: the paper's (Table 6, Appendix A) and the tiny ladder's.

The paper: AdamW (0.9, 0.95), fully decoupled weight decay 1e-4, gradient
clip 1.0, batch 2k sequences of 1k tokens (2M tokens), constant LR with a
1-sqrt cooldown over the last 20%, warmup 1k steps for runs of 1k-4k steps,
2.5k for 5k-15k, 5k above (MoE: 2.5k for every run under 20k steps), LR by
width (below), vision-encoder LR x0.1 for late fusion.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import cache, lru_cache

from sweeper.errors import SweeperInputError
from sweeper.train.loop import TrainHParams

# Table 6 learning rates by paper size label.
PAPER_LR = {
    "early_fusion": {
        "275M": 1.5e-3,
        "468M": 1.5e-3,
        "932M": 5e-4,
        "1.63B": 4.2e-4,
        "2.28B": 4e-4,
        "3.35B": 3.5e-4,
    },
    "late_fusion": {
        "289M": 1.5e-3,
        "494M": 1.5e-3,
        "1B": 5e-4,
        "1.75B": 4.2e-4,
        "2.43B": 3.8e-4,
        "3.7B": 3.3e-4,
    },
    "moe": {"275M": 1.5e-3, "468M": 1.5e-3, "932M": 5e-4, "1.63B": 4.2e-4, "2.28B": 4e-4, "3.35B": 3.5e-4},
}
PAPER_LR["dense_text"] = PAPER_LR["early_fusion"]
PAPER_BATCH_SEQUENCES = 2048  # 2k samples x 1k context = 2M tokens


def paper_warmup_steps(total_steps: int, kind: str) -> int:
    """Appendix A: 1k (runs up to 4k steps), 2.5k (5k-15k), 5k max; MoE 2.5k under 20k steps."""
    if kind == "moe" and total_steps < 20_000:
        return min(2_500, total_steps)
    if total_steps <= 4_000:
        return min(1_000, total_steps)
    if total_steps <= 15_000:
        return 2_500
    return 5_000


def paper_lr(spec) -> float:
    try:
        return PAPER_LR[spec.kind][spec.size]
    except KeyError:
        raise SweeperInputError(
            "model size", spec.size, f"paper recipes exist for {sorted(PAPER_LR[spec.kind])}"
        ) from None


def paper_hparams(spec, n_tokens: int, **overrides) -> TrainHParams:
    """The paper's recipe for a paper-ladder spec trained on n_tokens."""
    steps = max(1, math.ceil(n_tokens / (PAPER_BATCH_SEQUENCES * spec.seq_len)))
    return TrainHParams(
        **{
            "lr": paper_lr(spec),
            "batch_size": PAPER_BATCH_SEQUENCES,
            "warmup_steps": paper_warmup_steps(steps, spec.kind),
            **overrides,
        }
    )


# ---- the tiny ladder ---------------------------------------------------------------
TINY_BASE_LR, TINY_BASE_WIDTH = 6e-3, 64  # LR ~ 1/sqrt(width), tuned by hand on tiny-2..tiny-6
# Below this many steps, shrink the batch rather than the number of updates. Measured at 4e11 FLOPs
# on text of the generated language (dense_text), tiny-5 reached loss 1.06 at batch 12 (260 steps),
# 0.87 at batch 4 and 0.70 at batch 2 with 1.5x the LR (1570 steps): limited by updates, not tokens.
TINY_MIN_STEPS = 1500


def tiny_lr(width: int) -> float:
    """Smaller widths tolerate larger steps (as in Table 6, LR falls with width)."""
    return TINY_BASE_LR * math.sqrt(TINY_BASE_WIDTH / width)


def tiny_batch_size(spec, n_tokens: int, *, max_batch: int = 16, min_batch: int = 2) -> int:
    """Sequences per step: at most max_batch, fewer for short runs so they still get ~1500 updates."""
    per_seq = spec.seq_len
    return int(min(max_batch, max(min_batch, n_tokens // (per_seq * TINY_MIN_STEPS))))


def tiny_hparams(spec, n_tokens: int, **overrides) -> TrainHParams:
    """Recipe for the tiny ladder (paper schedule shape, LR by width, batch by run length)."""
    return TrainHParams(
        **{
            "lr": tiny_lr(spec.config.dim),
            "batch_size": tiny_batch_size(spec, n_tokens),
            "warmup_frac": 0.05,
            **overrides,
        }
    )


def table_recipe(spec, n_tokens: int, **overrides) -> TrainHParams:
    """The recipe for any registry spec: paper sizes get Table 6, tiny sizes the tiny recipe."""
    if spec.size in PAPER_LR.get(spec.kind, {}):
        return paper_hparams(spec, n_tokens, **overrides)
    return tiny_hparams(spec, n_tokens, **overrides)


LAWS_ARTIFACT = "hparam_laws.json"


@cache
def train_fields() -> tuple[str, ...]:
    return tuple(TrainHParams.model_fields)


@lru_cache(maxsize=32)
def _fitted_laws_cached(tracking_uri: str, run_id: str) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        client.get_run(run_id)
    except Exception:  # noqa: BLE001 - MLflow raises its own error types per store
        raise SweeperInputError(
            "training.recipe_run",
            run_id,
            f"no such MLflow run in {tracking_uri}; give the run id `sweeper tune` printed",
        ) from None
    try:
        path = client.download_artifacts(run_id, LAWS_ARTIFACT)
    except Exception:  # noqa: BLE001
        raise SweeperInputError(
            "training.recipe_run",
            run_id,
            f"the run has no {LAWS_ARTIFACT}; name the parent run of a finished `sweeper tune` job",
        ) from None
    with open(path) as fh:
        return fh.read()


def fitted_laws(tracking_uri: str, run_id: str) -> dict:
    """{"scale_with": "C"|"N", "laws": {"lr": {"K", "exponent"}, "batch_tokens": {...}}} of a tune job."""
    data = json.loads(_fitted_laws_cached(tracking_uri, run_id))
    laws = {
        name: {"K": float(f["params"]["K"]), "exponent": float(f["params"]["exponent"])}
        for name, f in data.get("laws", {}).items()
    }
    if "lr" not in laws:
        raise SweeperInputError(
            "training.recipe_run",
            run_id,
            "its tune job fitted no learning-rate law (too few rungs?); rerun `sweeper tune` with more rungs",
        )
    return {"scale_with": data.get("scale_with", "C"), "laws": laws}


def recipe_spec(cfg) -> dict:
    """What a trial needs to apply the recipe, with fitted laws inlined (workers need no MLflow)."""
    spec = {"name": cfg.training.recipe, "run_id": cfg.training.recipe_run}
    if cfg.training.recipe == "fitted":
        spec.update(fitted_laws(cfg.tracking_uri, cfg.training.recipe_run))
    return spec


def law_value(law: dict, x: float) -> float:
    return float(law["K"] * x ** law["exponent"])


def recipe_values(recipe: dict, spec, *, n_tokens: int, budget: float) -> dict:
    """The recipe's point-dependent values (lr, batch_size, warmup) for a ladder spec; {} for fixed."""
    name = recipe.get("name", "fixed")
    if name == "fixed":
        return {}
    try:
        hp = table_recipe(spec, max(1, int(n_tokens)))
    except SweeperInputError:
        if name == "paper":
            raise
        hp = None
    out = (
        {}
        if hp is None
        else {
            "lr": hp.lr,
            "batch_size": hp.batch_size,
            "warmup_frac": hp.warmup_frac,
            "warmup_steps": hp.warmup_steps,
        }
    )
    if name == "paper":
        return out
    if name != "fitted":
        raise SweeperInputError("training.recipe", name, "use fixed, paper or fitted")
    x = float(budget) if recipe.get("scale_with", "C") == "C" else float(spec.n_params)
    laws = recipe["laws"]
    out["lr"] = law_value(laws["lr"], x)
    if "batch_tokens" in laws:
        out["batch_size"] = max(1, int(round(law_value(laws["batch_tokens"], x) / spec.seq_len)))
    if "batch_size" not in out:
        raise SweeperInputError(
            "training.recipe_run",
            recipe.get("run_id"),
            f"the fitted recipe has no batch law and {spec.size} has no table recipe to take the batch from",
        )
    return out


def recipe_batch_size(cfg, spec, budget: float) -> int:
    """Sequences per step the plan uses for `spec` at slice `budget` under cfg's recipe."""
    if cfg.training.recipe == "fixed":
        return cfg.training.batch_size
    approx_tokens = budget / spec.flops_per_token
    values = recipe_values(recipe_spec(cfg), spec, n_tokens=int(approx_tokens), budget=budget)
    return int(values.get("batch_size", cfg.training.batch_size))


def resolve_hparams(hparams: Mapping, recipe: Mapping | None, point: Mapping | None, spec=None) -> dict:
    """TrainHParams keyword arguments for a trial: the training section, then the recipe at its point.

    The planned batch (point["batch_size"]) wins over the recipe's, so the trial
    trains exactly the steps the plan costed.
    """
    hp = dict(hparams)
    recipe = recipe or {"name": hp.get("recipe", "fixed"), "run_id": hp.get("recipe_run")}
    point = point or {}
    if recipe.get("name", "fixed") != "fixed" and point:
        if spec is None:
            from models.registry import get_model_spec

            spec = get_model_spec(point["kind"], point["size"])
        # With branching a point trains on its size's shared recipe (sweeper.plan.trials.share_size_recipes).
        hp.update(
            recipe_values(
                recipe,
                spec,
                n_tokens=int(point.get("recipe_tokens") or point["n_tokens"]),
                budget=float(point.get("recipe_budget") or point["budget"]),
            )
        )
        if point.get("batch_size"):
            hp["batch_size"] = int(point["batch_size"])
    fields = train_fields()
    out = {k: v for k, v in hp.items() if k in fields}
    if isinstance(out.get("mixture"), list):
        out["mixture"] = tuple(out["mixture"])
    if isinstance(out.get("betas"), list):
        out["betas"] = tuple(out["betas"])
    if out.get("warmup_steps") is not None and not math.isfinite(float(out["warmup_steps"])):
        out["warmup_steps"] = None
    return out


def hparams_from(hparams: Mapping, recipe: Mapping | None, point: Mapping | None) -> TrainHParams:
    """The trial's TrainHParams: the training section with the recipe (fixed/paper/fitted) applied at
    its point. One recipe resolution for every trainable (single-process, branched, distributed)."""
    return TrainHParams(**resolve_hparams(hparams, recipe, point))
