"""What each trial reserves from Ray, and a check that the cluster can ever grant it.

Ray waits for ever for a request no node can satisfy (it only logs an
"infeasible" warning once a minute), so a sweep asking for a GPU on a laptop
would hang without saying what to change. `check_feasible` compares the
requests with the nodes Ray reports right after it starts and fails first.

A simulated trial computes a formula: it reserves a sliver of one CPU whatever
the search space's `ray:` section says (that section sizes real training).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sweeper.errors import SweeperInputError

SIMULATED_CPU = 0.01  # a simulated trial's share of a CPU: 100 of them fit on one core


@dataclass(frozen=True, kw_only=True)
class Request:
    """One bundle of resources that must fit on a single node, and the config keys that set it."""

    cpu: float
    gpu: float = 0.0
    cpu_key: str = "ray.cpus_per_trial"
    gpu_key: str = "ray.gpus_per_trial"

    def bundle(self) -> dict[str, float]:
        return {"CPU": self.cpu, "GPU": self.gpu} if self.gpu else {"CPU": self.cpu}


def trial_request(cfg, *, simulated: bool | None = None, distributed: bool = False) -> Request:
    """The bundle a Tune trial reserves. A distributed trial only coordinates (its workers reserve through
    ScalingConfig, see `worker_request`); a simulated one (`simulated`, default: cfg.trainable says so)
    takes SIMULATED_CPU."""
    if simulated is None:
        simulated = cfg.trainable == "simulated"
    if simulated or distributed:
        return Request(cpu=SIMULATED_CPU)
    return Request(cpu=float(cfg.ray.cpus_per_trial), gpu=float(cfg.ray.gpus_per_trial))


def worker_request(cfg) -> Request:
    """One Ray Train worker of a distributed trial."""
    d = cfg.distributed
    return Request(
        cpu=float(d.cpus_per_worker),
        gpu=float(d.gpus_per_worker) if d.use_gpu else 0.0,
        cpu_key="distributed.cpus_per_worker",
        gpu_key="distributed.gpus_per_worker",
    )


def requests_for(cfg, *, simulated: bool | None = None) -> list[Request]:
    """Every distinct bundle a sweep of `cfg` may ask Ray for."""
    if simulated is None:
        simulated = cfg.trainable == "simulated"
    out = [trial_request(cfg, simulated=simulated)]
    if simulated:
        return out
    if cfg.distributed.enabled:
        if cfg.distributed.min_params_for_distributed <= 0:  # every trial goes distributed: no trial bundle
            out = [trial_request(cfg, distributed=True)]
        out.append(worker_request(cfg))
    return out


def check_feasible(requests: Iterable[Request], nodes: list[Mapping[str, float]]) -> None:
    """Raise SweeperInputError for the first request no node of the cluster can ever hold.

    `nodes`: each alive node's total resources (ray.nodes()[i]["Resources"]).
    """
    total_cpu = sum(float(n.get("CPU", 0.0)) for n in nodes)
    total_gpu = sum(float(n.get("GPU", 0.0)) for n in nodes)
    for req in requests:
        if any(req.cpu <= n.get("CPU", 0.0) and req.gpu <= n.get("GPU", 0.0) for n in nodes):
            continue
        has = f"the cluster has {_fmt(total_gpu)} GPUs and {_fmt(total_cpu)} CPUs over {len(nodes)} node(s)"
        if req.gpu > max((n.get("GPU", 0.0) for n in nodes), default=0.0):
            best = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
            fix = (
                f"--set {req.gpu_key}=0 to train on CPU"
                if best == 0
                else f"--set {req.gpu_key}={_fmt(best)} (the most GPUs on one node)"
            )
            raise SweeperInputError(
                req.gpu_key,
                req.gpu,
                f"no node can grant it ({has}); use {fix}, or run on a cluster with GPUs (--ray-address)",
            )
        best = max((n.get("CPU", 0.0) for n in nodes if req.gpu <= n.get("GPU", 0.0)), default=0.0)
        raise SweeperInputError(
            req.cpu_key,
            req.cpu,
            f"no node can grant it ({has}); use "
            f"--set {req.cpu_key}={_fmt(best)} (the most CPUs on one node) or fewer",
        )


def cluster_nodes() -> list[dict[str, float]]:
    """Total resources of each alive node of the connected Ray cluster."""
    import ray

    return [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]


def _fmt(x: float) -> str:
    return f"{x:g}"
