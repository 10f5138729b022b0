"""The one training loop: Tune trainables (and later Ray Train/DeepSpeed) call it.

Pieces are separate functions so another engine can reuse them:
`make_optimizer`, `lr_at`, `train_step`, `evaluate`, and the batch iterator
from sweeper.data. `train` wires them for a single process.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from models.flops import TokenCounts
from models.registry import build_model
from sweeper.config.schema import TrainHParams
from sweeper.data import TARGETS
from sweeper.data.loader import loader_batches
from sweeper.data.sources import held_out_sets, training_stream
from sweeper.errors import SweeperInputError
from sweeper.train.device import autocast
from sweeper.train.metrics import evaluate, moe_metrics
from sweeper.train.schedules import cooldown_multiplier, cooldown_start, warmup_steps_for, wsd_multiplier
from sweeper.train.tasks import bits_per_byte_metrics, downstream_metrics

VALIDATION_SEED = 10_007  # the same held-out data for every trial, whatever its training seed
DIVERGENCE_MARGIN = 3.0  # nats above the first step's loss: the run has diverged


@dataclass
class LossWatch:
    """The smoothed training loss and the one divergence rule that every step loop (single process,
    branched, DeepSpeed) applies: a non-finite loss, or one far above the first step's, ends the run."""

    ema: float | None = None
    first: float | None = None
    diverged: bool = False

    def update(self, loss: float) -> bool:
        self.first = loss if self.first is None else self.first
        self.ema = loss if self.ema is None else 0.9 * self.ema + 0.1 * loss
        self.diverged = self.diverged or not math.isfinite(loss) or loss > self.first + DIVERGENCE_MARGIN
        return self.diverged

    def state(self) -> dict:
        """What a checkpoint keeps, so a resumed run watches from the same first loss."""
        return {"ema": self.ema, "first": self.first}


def checkpoint_due(step: int, saved_at: int, every: int) -> bool:
    """The one checkpoint cadence: every `every` steps after the last save (0: never)."""
    return every > 0 and step - saved_at >= every


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    steps: int
    n_tokens: int
    flops: float
    losses: dict[str, float]  # caption / interleaved / text (those the kind has) and avg
    train_loss: float
    wall_time_s: float
    diverged: bool
    extra: dict = field(default_factory=dict)
    n_image_tokens: int = 0  # image-patch positions trained on (of n_tokens)
    n_scored_tokens: int = 0  # positions whose next-token loss was trained (C depends on it too)
    flops_at: tuple[float, ...] = field(default=(), repr=False)  # training FLOPs through each step (0..steps)

    @property
    def n_text_tokens(self) -> int:
        return self.n_tokens - self.n_image_tokens

    def flops_between(self, first: int, last: int) -> float:
        """Training FLOPs of steps first+1 .. last, as counted on their batches."""
        return self.flops_at[last] - self.flops_at[first]

    def final_report(self) -> dict:
        """What a trainable reports when the run ends (tracking.FINAL_KEYS read it back)."""
        return {
            "step": self.steps,
            "loss": self.losses.get("avg", math.nan),
            **{f"loss_{t}": self.losses.get(t, math.nan) for t in TARGETS},
            "flops": self.flops,
            "n_tokens_trained": self.n_tokens,
            "n_image_tokens": self.n_image_tokens,
            "n_text_tokens": self.n_text_tokens,
            "n_scored_tokens": self.n_scored_tokens,
            "train_loss": self.train_loss,
            "wall_time_s": self.wall_time_s,
            "status": "diverged" if self.diverged else "ok",
        }


class CountedBatches:
    """A training stream that counts what it hands out by modality: C is counted from the batches
    a run really trained on (its own mixture and data), not from an average FLOPs per token."""

    def __init__(self, batches, spec):
        self.batches, self.config, self.seq_len = batches, spec.config, spec.seq_len
        self.counts = TokenCounts()
        self.flops_at = [0.0]  # cumulative training FLOPs after each batch

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        batch = next(self.batches)
        self.counts.add(batch)
        self.flops_at.append(self.counts.flops(self.config, self.seq_len))
        return batch

    def skip(self, n: int) -> None:
        """Pass over the first n batches (a resumed run): a source that can jump there (token shards, whose
        batches all have the same counts) does; the generated stream is replayed, as it is cheap."""
        if not getattr(self.batches, "can_skip", hasattr(self.batches, "skip")):
            for _ in range(n):
                next(self)
            return
        self.batches.skip(n)
        per = self.batches.batch_counts
        for _ in range(n):
            self.counts.positions += per["positions"]
            self.counts.image += per["image"]
            self.counts.scored += per["scored"]
            self.flops_at.append(self.counts.flops(self.config, self.seq_len))


def make_optimizer(
    model: torch.nn.Module, hp: TrainHParams, spec, *, fused: bool = False
) -> torch.optim.Optimizer:
    """AdamW; no decay on norms; vision encoder at lr * vision_lr_mult; `fused` (CUDA only): one kernel
    per step.

    The paper uses *fully decoupled* weight decay (1e-4 per step at peak LR,
    independent of the LR value); torch's AdamW multiplies decay by the LR,
    so each group's weight_decay is divided by that group's peak LR.
    """
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((name.startswith("vision."), p.dim() >= 2), []).append(p)
    param_groups = []
    for (vision, decay), params in groups.items():
        lr = hp.lr * (hp.vision_lr_mult if vision else 1.0)
        wd = hp.weight_decay / lr if (decay and lr > 0) else 0.0
        param_groups.append({"params": params, "lr": lr, "peak_lr": lr, "weight_decay": wd})
    return torch.optim.AdamW(param_groups, lr=hp.lr, betas=hp.betas, eps=1e-8, fused=fused or None)


def n_steps_for(spec, hp: TrainHParams, n_tokens: int) -> int:
    return max(1, math.ceil(n_tokens / (hp.batch_size * spec.seq_len)))


def lr_at(step: int, total_steps: int, hp: TrainHParams) -> float:
    """Peak-LR multiplier at 0-based `step` (warmup-stable-decay)."""
    warmup = warmup_steps_for(total_steps, warmup_frac=hp.warmup_frac, warmup_steps=hp.warmup_steps)
    return wsd_multiplier(step, total_steps, warmup=warmup, cooldown_frac=hp.cooldown_frac)


def train_step(model, batch, optimizer, hp: TrainHParams, lr_mult: float) -> dict[str, float]:
    """One optimiser step; returns the losses of the batch. On CUDA the forward runs in bf16 autocast."""
    for g in optimizer.param_groups:
        g["lr"] = g["peak_lr"] * lr_mult
    with autocast(next(model.parameters()).device.type):
        out = model(batch)
    loss = out.lm_loss + hp.aux_loss_weight * out.aux_loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), hp.grad_clip)
    optimizer.step()
    return {"lm_loss": out.lm_loss.item(), "aux_loss": out.aux_loss.item(), "grad_norm": grad_norm.item()}


def _to(batch: dict, device: str) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()} if device != "cpu" else batch


def _set_threads() -> None:
    # Ray sets OMP_NUM_THREADS to the trial's CPUs; without it, one thread per
    # trial keeps concurrent trials from fighting over the same cores.
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))


def train(
    spec,
    hp: TrainHParams,
    *,
    n_tokens: int,
    seed: int,
    report: Callable[[dict], None] | None = None,
    device: str = "cpu",
    checkpoint: Callable[[dict, dict], None] | None = None,
    resume: dict | None = None,
    snapshot_at: int | None = None,
    snapshot: Callable[[dict], None] | None = None,
    cooled_eval_at: frozenset[int] = frozenset(),
    data: Mapping | None = None,
    tasks: Mapping | None = None,
) -> TrainResult:
    """Train `spec` on ceil(n_tokens / (batch*seq_len)) steps of the mixture.

    With `checkpoint`, an evaluation at least `hp.checkpoint_every` steps after the
    last checkpoint calls checkpoint(metrics, state) instead of report(metrics);
    `resume` (such a state) continues that run exactly where it stopped.
    `snapshot(state)` is called once, after step `snapshot_at` (cooldown branching).
    At a step of `cooled_eval_at` still in the stable phase, the reported `val_loss` is
    that of a cooled-down copy (see `cooled_metrics`); its FLOPs count in `flops`.
    `device`: "cpu", or "cuda" (bf16 autocast, fused AdamW); the trainables pass
    sweeper.train.device.trial_device().
    `data`: the search space's `data:` section (None: generated data; see sweeper.data.sources).
    """

    start = time.perf_counter()
    if device == "cpu":
        _set_threads()
    torch.manual_seed(seed)
    model = build_model(spec).to(device)
    optimizer = make_optimizer(model, hp, spec, fused=device.startswith("cuda"))
    total = n_steps_for(spec, hp, n_tokens)
    tokens_per_step = hp.batch_size * spec.seq_len
    val = held_out_sets(
        spec,
        n_batches=hp.eval_batches,
        batch_size=hp.eval_batch_size or hp.batch_size,
        seed=VALIDATION_SEED,
        data=data,
    )
    workers = int((data or {}).get("loader_workers", 0))
    batches = CountedBatches(
        loader_batches(lambda: training_stream(spec, hp.mixture, hp.batch_size, seed, data), workers), spec
    )
    watch, metrics, step = LossWatch(), {}, 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        watch, step = LossWatch(ema=resume["ema"], first=resume["first"]), int(resume["step"])
        batches.skip(step)  # the data stream is deterministic: continue at the exact sample
    saved_at, probe_flops = step, 0.0
    stable_until = cooldown_start(total, hp.cooldown_frac)
    for step in range(step + 1, total + 1):
        lr_mult = lr_at(step - 1, total, hp)
        stats = train_step(model, _to(next(batches), device), optimizer, hp, lr_mult)
        diverged = watch.update(stats["lm_loss"])
        if snapshot is not None and step == snapshot_at and not diverged:
            snapshot(_state(model, optimizer, step, watch))
        probe = step in cooled_eval_at and step <= stable_until and not diverged
        if diverged or probe or step % hp.eval_every == 0 or step == total:
            flops, lr = batches.flops_at[step], hp.lr * lr_mult
            metrics = _report(model, val, step, tokens_per_step, flops, lr, watch.ema, stats, device)
            if probe:
                cooled, flops = cooled_metrics(
                    model, optimizer, spec, hp, step=step, seed=seed, val=val, device=device, data=data
                )
                probe_flops += flops
                metrics = {**metrics, "val_loss_stable": metrics["val_loss"], **cooled}
            metrics["flops"] += probe_flops
            due = (
                checkpoint is not None
                and not diverged
                and step < total
                and checkpoint_due(step, saved_at, hp.checkpoint_every)
            )
            if due:
                saved_at = step
                checkpoint(metrics, _state(model, optimizer, step, watch))
            elif report is not None:
                report(metrics)
        if diverged:
            if batches.counts.scored == 0:  # not a divergence: the data gave the loss nothing to score
                raise SweeperInputError(
                    "data.path",
                    (data or {}).get("path"),
                    f"no position of the trial's "
                    f"first {step} batch(es) has a scored text target, so its loss is "
                    "undefined (every caption's image failed to decode, or the documents "
                    "hold no text); fix the source, or check it with `sweeper plan`",
                )
            break
    losses = {k.removeprefix("val_loss_"): v for k, v in metrics.items() if k.startswith("val_loss_")}
    losses["avg"] = metrics.get("val_loss", float("nan"))
    extra = {k: v for k, v in metrics.items() if k.startswith("moe_")}
    if probe_flops:
        extra["cooled_eval_flops"] = probe_flops
    if hasattr(batches.batches, "skipped_images"):  # webdataset pairs whose image did not decode
        extra["skipped_images"] = batches.batches.skipped_images
    if hasattr(batches.batches, "cut_tokens"):  # caption text beyond its pair's sequence (see DocumentPacker)
        extra["cut_tokens"] = batches.batches.cut_tokens
    if tasks and not watch.diverged and step == total:  # the finished model, on the tasks users ask about
        extra.update(downstream_metrics(model, spec, data, tasks, device=device))
    extra.update(bits_per_byte_metrics(losses, data))
    return TrainResult(
        steps=step,
        n_tokens=step * tokens_per_step,
        flops=batches.flops_at[step] + probe_flops,
        losses=losses,
        train_loss=float(watch.ema if watch.ema is not None else float("nan")),
        wall_time_s=time.perf_counter() - start,
        diverged=watch.diverged,
        extra=extra,
        n_image_tokens=batches.counts.image,
        n_scored_tokens=batches.counts.scored,
        flops_at=tuple(batches.flops_at),
    )


def cooled_metrics(
    model,
    optimizer,
    spec,
    hp: TrainHParams,
    *,
    step: int,
    seed: int,
    val,
    device: str,
    data: Mapping | None = None,
) -> tuple[dict, float]:
    """Validation losses of a copy of the run cooled down from `step`, and the FLOPs that cost.

    Mid-run losses of a warmup-stable-decay run are taken at the peak learning rate, where a
    larger LR looks worse than it ends up: comparing trials there (ASHA's early decisions)
    favours small LRs. The copy takes the cooldown a run ending here would have had
    (cooldown_frac of its length, on fresh batches of the same mixture); the run itself is untouched.
    """
    import copy

    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    saved_rng = torch.get_rng_state()  # the run continues exactly as it would have without the probe
    length = max(1, round(step * hp.cooldown_frac / (1.0 - hp.cooldown_frac)))
    # a stream of its own, not the run's
    batches = CountedBatches(training_stream(spec, hp.mixture, hp.batch_size, seed + 7919 * step, data), spec)
    for i in range(length):
        train_step(model, _to(next(batches), device), optimizer, hp, cooldown_multiplier(i, length))
    with autocast(device):
        per_target, _ = evaluate(model, val, device=device)
    model.load_state_dict(saved_model)
    optimizer.load_state_dict(saved_opt)
    torch.set_rng_state(saved_rng)
    cooled = {
        "val_loss": per_target["avg"],
        **{f"val_loss_{t}": per_target[t] for t in TARGETS if t in per_target},
    }
    return cooled, batches.flops_at[-1]


def _state(model, optimizer, step: int, watch: LossWatch) -> dict:
    """Everything `train(resume=...)` needs to continue exactly (the data stream is replayed by step)."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, **watch.state()}


def _report(model, val, step, tokens_per_step, flops, lr, ema, stats, device) -> dict:
    with autocast(device):
        per_target, routing = evaluate(model, val, device=device)
    metrics = {
        "step": step,
        "tokens": step * tokens_per_step,
        "flops": flops,
        "lr": lr,
        "train_loss": float(ema),
        "val_loss": per_target["avg"],
    }
    metrics.update({f"val_loss_{t}": per_target[t] for t in TARGETS if t in per_target})
    if routing:
        metrics["aux_loss"] = stats["aux_loss"]
        metrics.update(moe_metrics(routing, model.cfg.n_experts))
    return metrics
