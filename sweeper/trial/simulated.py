"""The simulated trainable: loss from a known law plus noise, instantly.

A tool for planning, tests and benchmarks, never a stand-in for training: every
run it makes is tagged `source=simulated` in MLflow and in reports. It runs
through the same searcher, ledger and MLflow recorder as real trials: in this process
(sweeper.sweep.in_process), or through Ray Tune when faults or delays are injected.
"""

from __future__ import annotations

import hashlib
import math
import time

import numpy as np
from ray import tune

from sweeper.fit import get_law
from sweeper.trial.faults import inject
from sweeper.trial.spec import TrialSpec


def law_loss(law: str, params: dict[str, float], n_params: float, n_tokens: float) -> float:
    """Noise-free loss of a registered law at (N, D)."""
    return float(get_law(law).predict(params, np.array([n_params], float), np.array([n_tokens], float))[0])


def point_rng(seed: int, point_id: str) -> np.random.Generator:
    """Noise depends only on (seed, point): a resumed or re-run point draws the same loss."""
    digest = hashlib.sha256(f"{seed}:{point_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def simulated_loss(sim: dict, point: dict, seed: int) -> float:
    clean = law_loss(sim["law"], sim["params"], point["n_params"], point["n_tokens"])
    return clean * math.exp(sim["noise"] * point_rng(seed, point["point_id"]).standard_normal())


def simulated_result(config: dict) -> dict:
    """The final report of a simulated trial at its point (what Tune's trial reports)."""
    trial = TrialSpec.of(config)
    point = trial.point
    loss = simulated_loss(trial.sim, point, int(trial.seed))
    return {
        "step": int(point["steps"]),
        "loss": loss,
        "flops": float(point["flops"]),
        "n_tokens_trained": int(point["n_tokens"]),
        "wall_time_s": 0.0,
        "status": "ok",
    }


def simulate_point(config: dict) -> None:
    """The Ray Tune trainable: the in-process driver (sweeper.sweep.in_process) serves simulated sweeps
    without faults or delays; this one runs where Ray's machinery is under test."""
    trial = TrialSpec.of(config)
    point = trial.point
    if inject(trial.faults, point["point_id"]) == "nan":
        tune.report(
            {
                "step": int(point["steps"]),
                "loss": math.nan,
                "flops": float(point["flops"]),
                "status": "diverged",
                "error": "injected divergence: loss became NaN",
            }
        )
        return
    if trial.sim.get("delay_s"):
        time.sleep(float(trial.sim["delay_s"]))  # lets tests catch a sweep mid-flight
    tune.report(simulated_result(config))
