"""Recipes: where each trial's learning rate, batch and warmup come from.

- fixed:  the training section's values, for every point (the old behaviour).
- paper:  the reference's Table 6 (LR by width, 2M-token batch, 1k/2.5k/5k warmup)
          for paper-ladder sizes; the tiny ladder's hand recipe for tiny sizes.
- fitted: the hyperparameter laws a `sweeper tune` job fitted (lr = K C^a, batch
          tokens = K_b C^b, or in N), read once from that job's MLflow run
          (`training.recipe_run`); what the laws do not cover comes from `paper`.

Everything else (weight decay, clip, mixture, evaluation) comes from the
training section. The recipe's name and run are recorded on every trial as the
`hp.recipe` / `hp.recipe_run` params.
"""

from __future__ import annotations

import json
import math
from functools import cache, lru_cache

from sweeper.errors import SweeperInputError

LAWS_ARTIFACT = "hparam_laws.json"


@cache
def train_fields() -> tuple[str, ...]:
    from sweeper.config.schema import TrainHParams

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
    from sweeper.train.recipes import recipe as table_recipe

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


def resolve_hparams(config: dict, spec=None) -> dict:
    """TrainHParams keyword arguments for a trial: training section, then the recipe at its point.

    The planned batch (point["batch_size"]) wins over the recipe's, so the trial
    trains exactly the steps the plan costed.
    """
    hp = dict(config["hparams"])
    recipe = config.get("recipe") or {"name": hp.get("recipe", "fixed"), "run_id": hp.get("recipe_run")}
    point = config.get("point") or {}
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


def hparams_from(config: dict):
    """The trial's TrainHParams: the training section with the recipe (fixed/paper/fitted) applied at
    its point. One recipe resolution for every trainable (single-process, branched, distributed)."""
    from sweeper.config.schema import TrainHParams

    return TrainHParams(**resolve_hparams(config))
