"""Trainables of a hyperparameter search: one rung point, one sampled configuration.

`tune_point` trains for real and reports the loop's evaluations (step, tokens,
flops, val_loss, val_loss_<target>) as they happen, so ASHA can stop a poor
trial; its last report adds `status`, which only a trial that ran to the end has.
`simulate_tune_point` is the labelled stand-in for tests and benchmarks: a
known loss law times a known penalty for being off the optimal learning rate
(and batch), reported along the same token axis.
"""

from __future__ import annotations

import math
import time

from ray import tune

from models.registry import at_mixture, point_spec
from sweeper.config.tune_space import apply_sample
from sweeper.train.device import trial_device
from sweeper.train.loop import TrainHParams, train
from sweeper.trial.simulated import point_rng
from sweeper.trial.spec import TrialSpec

# The simulated surface's optimum when simulation.params does not set it: lr* = 0.5 C^-0.15.
SIM_DEFAULTS = {"lr_K": 0.5, "lr_a": -0.15, "lr_k": 0.05}
DIVERGED_LOSS = 99.0  # what the searcher is told for a non-finite loss (NaN would be dropped)


def trial_hparams(config: dict, spec=None) -> dict:
    """TrainHParams kwargs: training section, recipe at the rung's point, then this trial's sample."""
    trial = TrialSpec.of(config)
    if spec is None:
        from models.registry import get_model_spec

        spec = get_model_spec(trial.point["kind"], trial.point["size"])
    return apply_sample(trial.hparam_values(spec), trial.search, seq_len=spec.seq_len)


def _finite(value: float) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else DIVERGED_LOSS


def cooled_eval_steps(milestones: dict, tokens_per_step: int) -> frozenset[int]:
    """The first step at or past each ASHA milestone ({"tokens": [...]} or {"step": [...]}):
    the report ASHA decides on there carries the cooled-down loss."""
    steps = set(milestones.get("step", ()))
    steps.update(math.ceil(t / tokens_per_step) for t in milestones.get("tokens", ()))
    return frozenset(int(s) for s in steps)


def tune_point(config: dict) -> None:

    trial = TrialSpec.of(config)
    point = trial.point
    spec = point_spec(point)
    hp = TrainHParams(**trial_hparams(config, spec))
    spec = at_mixture(
        spec, hp.mixture
    )  # FLOPs estimates at this trial's mixture; train() counts the real ones
    device = trial_device()  # the GPU Ray assigned, or the CPU; a reserved GPU torch cannot see fails here
    started = time.perf_counter()

    def report(metrics: dict) -> None:
        tune.report({**metrics, "val_loss": _finite(metrics.get("val_loss", math.nan))})

    result = train(
        spec,
        hp,
        n_tokens=int(point["n_tokens"]),
        seed=int(trial.seed),
        report=report,
        cooled_eval_at=cooled_eval_steps(trial.cooled_eval_at, hp.batch_size * spec.seq_len),
        device=device,
        data=trial.data,
    )
    tune.report(
        {
            **result.final_report(),
            "tokens": result.n_tokens,
            "val_loss": _finite(result.losses.get("avg", math.nan)),
            "wall_time_s": time.perf_counter() - started,
        }
    )


def simulated_loss(sim: dict, point: dict, hp: dict, tokens: float) -> float:
    """E + A/N^alpha + B/t^beta, times 1 + k (ln lr/lr*)^2 [+ k_b (ln bt/bt*)^2]; lr* = K C^a."""
    c = float(point["budget"])
    base = (
        sim["E"] + sim["A"] / point["n_params"] ** sim["alpha"] + sim["B"] / max(tokens, 1.0) ** sim["beta"]
    )
    lr_opt = sim["lr_K"] * c ** sim["lr_a"]
    penalty = sim.get("lr_k", 0.05) * math.log(hp["lr"] / lr_opt) ** 2
    if "bt_K" in sim:
        bt_opt = sim["bt_K"] * c ** sim["bt_a"]
        penalty += sim.get("bt_k", 0.02) * math.log(hp["batch_size"] * point["seq_len"] / bt_opt) ** 2
    return base * (1.0 + penalty)


def simulate_tune_point(config: dict) -> None:
    """Instant: ten evaluations along the rung's tokens, loss from the known surface plus seeded noise."""
    import numpy as np

    trial = TrialSpec.of(config)
    point, sim = trial.point, trial.tune_sim
    hp = trial_hparams(config)
    n_tokens = int(point["n_tokens"])
    tokens_per_step = hp["batch_size"] * point["seq_len"]
    steps = max(1, math.ceil(n_tokens / tokens_per_step))
    key = f"{point['point_id']}:{sorted(trial.search.items())}"
    noise = float(sim.get("noise", 0.0)) * point_rng(int(trial.seed), key).standard_normal()
    for k in np.unique(np.linspace(steps / 10, steps, 10).round().astype(int)):
        tokens = int(k) * tokens_per_step
        loss = simulated_loss(sim, point, hp, tokens) * math.exp(noise)
        tune.report(
            {"step": int(k), "tokens": tokens, "flops": tokens * point["flops"] / n_tokens, "val_loss": loss}
        )
    tune.report(
        {
            "step": steps,
            "tokens": steps * tokens_per_step,
            "flops": steps * tokens_per_step * point["flops"] / n_tokens,
            "val_loss": loss,
            "loss": loss,
            "status": "ok",
            "n_tokens_trained": steps * tokens_per_step,
        }
    )
