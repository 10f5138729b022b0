"""Cooldown branching: one warmup-stable run per model size, one short cooldown per D.

With the WSD schedule a run of T steps is warmup + stable up to step
S = T - round(cooldown_frac * T), then a cooldown to zero. Up to S it does
not depend on T, so for one size the stable phase is trained once, snapshotted
at every S the plan needs, and each (N, D) point continues from its snapshot
with its own cooldown (on the same data stream, from the same position).

Schedules are identical to independent runs when the warmup is given in
steps; with `warmup_frac` every branch of a size uses the warmup of its
shortest point (the stable run cannot know which branch it will become).

FLOP accounting counts the shared stable phase once: each stable segment is
charged to the shortest point that needs it, so a point's `flops` is what it
added (its cooldown and the stable steps no shorter point needed) and the sum
over points is what was really spent. `equivalent_flops` is the cost of the
same point as an independent run: C of the (N, D) point for the law.

Two ways to run it: `train_point_branched`, one Tune trial per point through a
snapshot store shared by the trials of a size (what `sweeper run` does with
`training.branching: true`), and `train_branched`, one process training a size's
stable run and all its branches (benchmarks). Costs live in sweeper.train.branch_costs.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from models.registry import build_model
from sweeper.data import train_batches
from sweeper.train.branch_costs import Branch, branch_step
from sweeper.train.loop import (
    LossWatch,
    TrainHParams,
    TrainResult,
    _set_threads,
    _state,
    lr_at,
    make_optimizer,
    n_steps_for,
    train,
    train_step,
)
from sweeper.train.schedules import warmup_steps_for
from sweeper.train.stable_store import StableStore, store_key


def shared_warmup(hp: TrainHParams, shortest_steps: int) -> TrainHParams:
    """Fix the warmup in steps so every branch of a size sees the same stable phase."""
    if hp.warmup_steps is not None:
        return hp
    return hp.replace(warmup_steps=warmup_steps_for(shortest_steps, warmup_frac=hp.warmup_frac))


def train_branched(
    spec,
    hp: TrainHParams,
    points: Sequence[tuple[str, int]],
    *,
    seed: int,
    report: Callable[[str, dict], None] | None = None,
) -> dict[str, TrainResult]:
    """Train one stable run for `spec` and a cooldown branch per (point_id, n_tokens).

    Branches run as soon as the stable run reaches their snapshot, so at most one
    extra copy of the model and optimiser is alive at a time.
    """
    started = time.perf_counter()
    _set_threads()
    totals = {pid: n_steps_for(spec, hp, n) for pid, n in points}
    branches = sorted(
        (
            Branch(point_id=pid, branch_step=branch_step(t, hp.cooldown_frac), total_steps=t)
            for pid, t in totals.items()
        ),
        key=lambda b: (b.branch_step, b.total_steps),
    )
    hp = shared_warmup(hp, min(totals.values()))
    torch.manual_seed(seed)
    model = build_model(spec)
    optimizer = make_optimizer(model, hp, spec)
    stream = train_batches(spec, hp.mixture, hp.batch_size, seed)
    results: dict[str, TrainResult] = {}
    step, pending, watch = 0, list(branches), LossWatch()  # its ema and first loss go on in each branch
    reached = 0  # stable steps already charged to a shorter branch
    while pending:
        while pending and pending[0].branch_step == step:
            b = pending.pop(0)
            t0 = time.perf_counter()
            r = _cooldown(spec, hp, model, optimizer, b, seed, report, watch)
            # counted on the batches: the stable steps no shorter branch paid for, and its cooldown;
            # the branch replays the stable run's stream, so its own count covers both
            results[b.point_id] = replace(
                r,
                flops=r.flops_between(reached, r.steps),
                wall_time_s=time.perf_counter() - t0,
                extra={**r.extra, "branch_step": b.branch_step, "equivalent_flops": r.flops},
            )
            reached = max(reached, b.branch_step)
        if not pending:
            break
        step += 1  # the stable phase: LR multiplier of any branch still ahead (warmup, then 1)
        loss = train_step(model, next(stream), optimizer, hp, lr_at(step - 1, pending[-1].total_steps, hp))[
            "lm_loss"
        ]
        watch.update(loss)
    for r in results.values():
        r.extra["stable_wall_time_s"] = time.perf_counter() - started
    return results


def _cooldown(spec, hp, stable_model, stable_optimizer, b: Branch, seed, report, watch) -> TrainResult:
    """Continue a copy of the stable state from b.branch_step to b.total_steps with its own
    cooldown: `train` resumed from it. A deep copy: the optimiser would otherwise share its
    moment tensors with the stable run, which goes on."""
    state = copy.deepcopy(_state(stable_model, stable_optimizer, b.branch_step, watch))
    rng = torch.get_rng_state()  # train() reseeds; the stable run goes on as if no branch had run
    try:
        return train(
            spec,
            hp,
            n_tokens=b.total_steps * hp.batch_size * spec.seq_len,
            seed=seed,
            resume=state,
            report=None if report is None else lambda metrics: report(b.point_id, metrics),
        )
    finally:
        torch.set_rng_state(rng)


def train_point_branched(
    spec,
    hp: TrainHParams,
    *,
    n_tokens: int,
    seed: int,
    store_root,
    warmup_steps: int,
    report=None,
    checkpoint=None,
    resume: dict | None = None,
    device: str = "cpu",
    data=None,
    tasks=None,
) -> tuple[TrainResult, dict]:
    """One (N, D) point as a cooldown branch off its size's shared stable run (sweeper.train.stable_store).

    Starts from the latest stored snapshot at or before its branch step (or from
    `resume`, a Tune retry's checkpoint), leaves a snapshot at its branch step for
    longer points, and returns the result with what it really spent.
    """

    if hp.warmup_steps is None:
        hp = hp.replace(warmup_steps=int(warmup_steps))
    total = n_steps_for(spec, hp, n_tokens)
    s = branch_step(total, hp.cooldown_frac)
    store = StableStore(store_root, store_key(spec.kind, spec.size, hp, seed))
    start = resume or store.latest(s)
    start_step = int(start["step"]) if start else 0
    # Where this trial first picked up the shared run: a Tune retry resumes from the trial's
    # own checkpoint, but what it spent still counts from there.
    origin = int(resume.get("branched_from", start_step)) if resume else start_step

    def checkpoint_with_origin(metrics: dict, state: dict) -> None:
        checkpoint(metrics, {**state, "branched_from": origin})

    result = train(
        spec,
        hp,
        n_tokens=n_tokens,
        seed=seed,
        report=report,
        resume=start,
        checkpoint=checkpoint_with_origin if checkpoint is not None else None,
        snapshot_at=s if s > start_step else None,
        snapshot=store.save,
        device=device,
        data=data,
        tasks=tasks,
    )
    # what this point added: the steps after it picked up the shared run, counted on their batches
    spent = result.flops_between(origin, result.steps)
    return result, {"branch_step": s, "stable_from_step": origin, "flops_spent": spent}
