"""Mixture sweeps: the data mixture as a sweep axis.

One isoFLOP sweep per mixture (the same plan, the same seed), each with its
average and per-target (caption, interleaved, text) fits, then one table that
puts the fitted laws side by side, logged to a `mixture_study` MLflow run that
links the sweeps (reference §3.2, Table 3: the exponents move with the mixture).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

from sweeper.config.schema import SweepConfig
from sweeper.config.tune_space import as_mixture_label, mixture_weights
from sweeper.errors import SweeperInputError

TARGET_ORDER = ("average", "caption", "interleaved", "text")
SHOWN = ("E", "A", "B", "alpha", "beta", "a", "b")


@dataclass(frozen=True, kw_only=True)
class MixtureStudy:
    study_run_id: str
    sweeps: dict  # mixture label -> SweepResult
    fits: dict  # mixture label -> {target: FitResult}

    def table(self) -> str:
        return comparison_table(self.fits)

    def to_dict(self) -> dict:
        return {
            "study_run_id": self.study_run_id,
            "sweeps": {m: r.sweep_id for m, r in self.sweeps.items()},
            "fits": {m: {t: f.to_dict() for t, f in fits.items()} for m, fits in self.fits.items()},
        }


def mixture_fits(result) -> dict:
    fits = {"average": result.fit} if result.fit is not None else {}
    fits.update(result.fits_per_target)
    return fits


def comparison_table(fits: dict) -> str:
    """Rows: mixture x target; columns: the law's parameters and the N_opt/D_opt exponents."""
    head = f"{'mixture':<12} {'target':<12} " + " ".join(f"{k:>9}" for k in SHOWN) + f" {'runs':>5}"
    lines = [head, "-" * len(head)]
    for mixture, per_target in fits.items():
        for target in TARGET_ORDER:
            fit = per_target.get(target)
            if fit is None:
                lines.append(f"{mixture:<12} {target:<12} (no fit)")
                continue
            values = {**fit.params, **fit.derived}
            cells = " ".join(f"{values.get(k, math.nan):>9.4g}" for k in SHOWN)
            lines.append(f"{mixture:<12} {target:<12} {cells} {fit.n_runs:>5}")
    return "\n".join(lines)


def run_mixture_study(cfg: SweepConfig, *, progress: Callable[[str], None] = print) -> MixtureStudy:
    from sweeper.plan.trials import make_plan
    from sweeper.sweep.execution import ensure_ray, run_sweep
    from sweeper.tracking.mlflow_runs import (
        client_for,
        ensure_experiment,
        new_sweep_id,
        start_sweep_run,
    )

    if cfg.resume:  # each mixture is its own sweep: "the latest sweep" would be the same one for all
        raise SweeperInputError(
            "resume",
            True,
            "a mixture study resumes one mixture at a time: sweeper run "
            "SPACE --resume --sweep-id ID --set 'training.mixture=[caption,interleaved,text]' "
            "(each sweep's id is in its progress line and in MLflow)",
        )
    labels = [as_mixture_label(m, f"tune.mixtures[{i}]") for i, m in enumerate(cfg.tune.mixtures)]
    if len(labels) < 2:
        raise SweeperInputError(
            "tune.mixtures", list(cfg.tune.mixtures), "a mixture sweep compares two or more mixtures"
        )
    configs = {m: cfg.replace(training=cfg.training.replace(mixture=mixture_weights(m))) for m in labels}
    plans = {m: make_plan(c) for m, c in configs.items()}  # every plan is checked before anything runs
    sweeps, fits = {}, {}
    started = ensure_ray(cfg)  # one Ray for every mixture, not a restart per sweep
    try:
        for m in labels:
            progress(f"mixture {m}: isoFLOP sweep of {len(plans[m].trials)} trials")
            result = run_sweep(configs[m], plans[m], sweep_id=None, progress=progress)
            sweeps[m], fits[m] = result, mixture_fits(result)
    finally:
        if started:
            import ray

            ray.shutdown()
    client = client_for(cfg.tracking_uri)
    experiment_id = ensure_experiment(client, cfg.experiment_name, cfg.tracking_uri)
    study = start_sweep_run(
        client,
        experiment_id,
        sweep_id=new_sweep_id(),
        config=cfg.to_dict(),
        tags={"sweeper.role": "mixture_study", "sweeper.mixtures": ",".join(labels)},
    )
    for m, result in sweeps.items():
        client.set_tag(result.parent_run_id, "sweeper.mixture", m)
        client.set_tag(study, f"sweeper.sweep.{m}", result.sweep_id)
    client.log_text(study, comparison_table(fits), "mixture_comparison.txt")
    client.log_text(
        study,
        json.dumps(
            {m: {t: f.to_dict() for t, f in per.items()} for m, per in fits.items()}, indent=2, default=float
        ),
        "mixture_fits.json",
    )
    for m, per in fits.items():
        for target, fit in per.items():
            for key in ("alpha", "beta", "a", "b"):
                value = {**fit.params, **fit.derived}.get(key)
                if isinstance(value, float) and math.isfinite(value):
                    client.log_metric(study, f"{m}.{target}.{key}", value)
    client.set_terminated(study, "FINISHED")
    return MixtureStudy(study_run_id=study, sweeps=sweeps, fits=fits)
