"""Faults injected at a set rate: is anything lost, and is the fit the same?

Runs one simulated isoFLOP sweep twice through real Ray Tune and MLflow (SQLite,
in a temporary directory): once fault-free, once with trials that raise or have
their worker SIGKILLed on their first attempt (Tune retries them per
FailureConfig). Prints faults injected, trials recovered, runs lost, and whether
the final fits are equal. Simulated losses depend only on (seed, point), so an
equal fit means every point came back with its own result.

    python benchmarks/faults.py [--rate 0.3] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

SLICES = [4.7e12, 9.4e12, 1.9e13]


def run(root: str, name: str, rate: float, seed: int):
    from sweeper import Sweeper
    from sweeper.trial.faults import Harness

    sweeper = Sweeper(
        "tiny",
        kind="dense_text",
        trainable="simulated",
        design="grid",
        budget=2e14,
        slices=SLICES,
        tracking_uri=f"sqlite:///{root}/mlflow.db",
        experiment=name,
        n_bootstrap=20,
        seed=seed,
        harness=Harness(fault_rate=rate, fault_kinds=("raise", "kill"), fault_seed=seed),
        **{"ray.max_failures": 2},
    )
    started = time.perf_counter()
    result = sweeper.run(progress=lambda line: None)
    return sweeper.plan(), result, time.perf_counter() - started


def main() -> None:
    import ray

    from sweeper.trial.faults import fault_for

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sweeper-faults-") as root:
        os.chdir(root)
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            plan, clean, clean_s = run(root, "fault-free", 0.0, args.seed)
            _, faulty, faulty_s = run(root, "faulty", args.rate, args.seed)
        finally:
            ray.shutdown()
    injected = {
        t.point_id: fault_for({"rate": args.rate, "kinds": ["raise", "kill"], "seed": args.seed}, t.point_id)
        for t in plan.trials
    }
    hit = [p for p, kind in injected.items() if kind]
    frame = faulty.runs.frame.set_index("point_id")
    recovered = [p for p in hit if p in frame.index and frame.loc[p, "status"] == "ok"]
    lost = [
        t.point_id
        for t in plan.trials
        if t.point_id not in frame.index or frame.loc[t.point_id, "status"] != "ok"
    ]
    same_losses = np.allclose(
        clean.runs.frame.set_index("point_id").loc[frame.index, "loss"], frame["loss"], rtol=0, atol=0
    )
    names = list(clean.fit.params)
    diff = max(abs(clean.fit.params[k] - faulty.fit.params[k]) / abs(clean.fit.params[k]) for k in names)
    print(f"planned trials:        {len(plan.trials)}")
    print(
        f"faults injected:       {len(hit)} ({sum(injected[p] == 'raise' for p in hit)} raise, "
        f"{sum(injected[p] == 'kill' for p in hit)} SIGKILL) at rate {args.rate}"
    )
    print(f"trials recovered:      {len(recovered)} of {len(hit)}")
    print(f"runs lost:             {len(lost)}")
    print(f"child runs in MLflow:  {len(frame)} (one per point: {frame.index.is_unique})")
    print(f"losses identical:      {same_losses}")
    print(f"fit equal:             {diff == 0.0} (max relative parameter difference {diff:.2e})")
    print(
        f"wall time:             fault-free {clean_s:.1f} s, with faults {faulty_s:.1f} s "
        f"(ratio {faulty_s / clean_s:.2f})"
    )


if __name__ == "__main__":
    main()
