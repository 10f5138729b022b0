"""Large trials: Ray Train TorchTrainer + DeepSpeed ZeRO-k inside the Tune trial.

Same recipe as the single-process loop (sweeper.train.loop): the same model,
optimiser (`make_optimizer`), WSD schedule (`lr_at`), data stream and
evaluation. Every worker draws the recipe's *global* batch from the same
seeded stream and trains on its own slice of it, in `grad_accum`
micro-batches, with each micro-batch loss weighted by its share of the
global batch's scored tokens; so one optimiser step sees exactly the batch
(and the token-mean loss) the single-process loop sees, and the two loss
trajectories agree up to float reduction order.

Checkpoints are Ray Train checkpoints holding DeepSpeed's per-rank shards plus
the step; a restarted run (worker failure, or `resume_from`) reloads them and
skips the batches it already trained on.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

# The `distributed:` section of the sweep config is the settings object itself.
from sweeper.config.schema import DistributedSection as DistributedSettings
from sweeper.config.schema import zero3_desynchronises
from sweeper.data import TARGETS, as_mixture, train_batches, validation_sets
from sweeper.train import deepspeed_engine
from sweeper.train.loop import (
    VALIDATION_SEED,
    CountedBatches,
    LossWatch,
    TrainHParams,
    TrainResult,
    checkpoint_due,
    lr_at,
    make_optimizer,
    n_steps_for,
)
from sweeper.train.metrics import evaluate
from sweeper.train.recipes import hparams_from
from sweeper.train.tasks import bits_per_byte_metrics, downstream_metrics

IGNORE = -100


def settings_from(raw: dict | None) -> DistributedSettings:
    return DistributedSettings(**(raw or {}))


def use_distributed(spec, settings: DistributedSettings) -> bool:
    """Small trials keep the single-process path."""
    return settings.enabled and spec.n_params >= settings.min_params_for_distributed


def accumulation(global_batch: int, workers: int, micro_batch: int) -> tuple[int, int]:
    """(micro_batch, grad_accum) with micro_batch * grad_accum * workers == global_batch."""
    if global_batch % workers:
        raise ValueError(
            f"training.batch_size={global_batch} is not divisible by distributed.workers={workers}; "
            "choose a batch size that is a multiple of the worker count"
        )
    share = global_batch // workers
    want = micro_batch if 0 < micro_batch <= share else share
    micro = max(d for d in range(1, want + 1) if share % d == 0)
    return micro, share // micro


def scaling_config(settings: DistributedSettings):
    from ray.train import ScalingConfig

    resources = {"CPU": settings.cpus_per_worker}
    if settings.use_gpu:
        resources["GPU"] = settings.gpus_per_worker
    return ScalingConfig(
        num_workers=settings.workers, use_gpu=settings.use_gpu, resources_per_worker=resources
    )


def slice_batch(batch: dict, start: int, stop: int) -> dict:
    """Sequences [start, stop) of a collated batch, with their image patches."""
    out = {k: v[start:stop] for k, v in batch.items() if k != "patches"}
    if "patches" in batch:
        per_seq = batch["is_image"].sum(dim=1)
        first = int(per_seq[:start].sum())
        out["patches"] = batch["patches"][first : first + int(per_seq[start:stop].sum())]
    return out


class SameCallsOnEveryRank(torch.nn.Module):
    """Image-input models under ZeRO-2/3: call the image embedding even for a micro-batch without images.

    ZeRO-2 reduces gradients from per-parameter hooks and ZeRO-3 gathers
    parameters per module call (forward, then backward in reverse), so every
    rank must call the same modules in the same order. The model skips
    `embed_images` (early fusion's patch embedding, late fusion's vision
    encoder) when a batch has no image positions; here it is then called on
    zero patches just before the first block (where the model would have
    called it: after the token embedding) and joined to the graph with weight 0,
    which changes neither the loss nor any gradient value. (MoE layers call
    every expert themselves.)
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.cfg = model.cfg
        self._no_images = False
        model.layers[0].register_forward_pre_hook(self._touch_image_embedding)

    def _touch_image_embedding(self, module, args):
        if not self._no_images:
            return None
        h, *rest = args
        empty = h.new_zeros(
            (0, self.cfg.image.patch_dim)
        )  # h: after the token embedding, in the model's dtype
        return (h + 0.0 * self.model.embed_images(empty).sum().to(h.dtype), *rest)

    def forward(self, batch: dict):
        self._no_images = not bool(batch["is_image"].any())
        try:
            return self.model(batch)
        finally:
            self._no_images = False


def for_zero(model: torch.nn.Module, spec, zero_stage: int, mixture) -> torch.nn.Module:
    """The module DeepSpeed wraps: data-independent module calls where ZeRO needs them."""
    if zero3_desynchronises(zero_stage, spec.kind, as_mixture(mixture)[TARGETS.index("text")]):
        raise ValueError(
            f"zero_stage=3 with {spec.kind} and text-only sequences in the mixture: ZeRO-3 gathers "
            "parameters per module call, and the model skips its image embedding for a micro-batch "
            "without images, so ranks would diverge; use zero_stage 2, or a mixture without text"
        )
    if zero_stage == 2 and spec.kind != "dense_text":
        return SameCallsOnEveryRank(model)
    return model  # stages 0-1 need nothing; stage 3 here: dense text, or every sequence holds an image


def _cast(batch: dict, device, dtype) -> dict:
    return {
        k: v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device)
        for k, v in batch.items()
    }


# ---- what runs on each Ray Train worker -----------------------------------------------


@dataclass(frozen=True)
class WorkerRun:
    """What every Ray Train worker of one run receives (Ray Train carries it as the loop config dict)."""

    point: Mapping[str, Any]  # kind, size, n_tokens (and point_id in a sweep)
    hparams: Mapping[str, Any]  # the training section; `recipe` is applied at the point on each worker
    recipe: Mapping[str, Any] | None = None
    seed: int = 0
    distributed: Mapping[str, Any] | None = None
    max_failures: int = 1
    stop_at_step: int | None = None
    resume_from: str | None = None
    tasks: Mapping[str, Any] | None = None  # the `tasks:` section: scored on every rank at the end

    @classmethod
    def of(cls, loop_config: Mapping[str, Any]) -> WorkerRun:
        """The run in Ray Train's loop config (the one place its keys are read; others are ignored)."""
        return cls(**{f.name: loop_config[f.name] for f in fields(cls) if f.name in loop_config})

    def train_hparams(self) -> TrainHParams:
        return hparams_from(self.hparams, self.recipe, self.point)


def worker_loop(loop_config: dict) -> None:
    """train_loop_per_worker: the loop config is a WorkerRun's fields."""
    import ray.train

    def report(metrics: dict, checkpoint_dir: str | None) -> None:
        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=checkpoint)

    resume = ray.train.get_checkpoint()  # set when Ray Train restarted the worker group after a failure
    run = WorkerRun.of(loop_config)
    if resume is None and run.resume_from:
        resume = ray.train.Checkpoint(run.resume_from)
    ctx = ray.train.get_context()
    run_worker(run, rank=ctx.get_world_rank(), world=ctx.get_world_size(), report=report, resume=resume)


def run_worker(
    run: WorkerRun | Mapping, *, rank: int, world: int, report, resume=None, checkpointing: bool = True
) -> dict:
    """One distributed run on this rank (torch.distributed already initialised); returns the final summary.

    `report(metrics, checkpoint_dir_or_None)` is called on every rank at each evaluation.
    """
    import torch.distributed as dist

    from models.registry import build_model, get_model_spec

    started = time.perf_counter()
    run = run if isinstance(run, WorkerRun) else WorkerRun.of(run)
    settings = settings_from(run.distributed)
    point, hp = run.point, run.train_hparams()
    spec = get_model_spec(point["kind"], point["size"])
    device = torch.device(f"cuda:{torch.cuda.current_device()}") if settings.use_gpu else torch.device("cpu")
    dtype = torch.bfloat16 if settings.use_gpu else torch.float32
    if not settings.use_gpu:
        torch.set_num_threads(max(1, int(settings.cpus_per_worker)))
    seed = int(run.seed)
    torch.manual_seed(seed)  # every rank builds identical initial weights, as the single process does
    model = build_model(spec).to(device)
    base_optimizer = make_optimizer(model, hp, spec)
    micro, accum = accumulation(hp.batch_size, world, settings.micro_batch_size)
    engine = deepspeed_engine.initialize(
        for_zero(model, spec, settings.zero_stage, hp.mixture),
        base_optimizer,
        deepspeed_engine.ZeroSettings(
            stage=settings.zero_stage,
            micro_batch=micro,
            grad_accum=accum,
            world_size=world,
            grad_clip=hp.grad_clip,
            bf16=settings.use_gpu,
        ),
    )
    state = {"step": 0, "ema": None, "first": None, "diverged": False}
    if resume is not None:
        with resume.as_directory() as directory:
            state.update(deepspeed_engine.load(engine, directory).get("sweeper", {}))
    total = n_steps_for(spec, hp, int(point["n_tokens"]))
    stop_at = int(run.stop_at_step or total)
    tokens_per_step = hp.batch_size * spec.seq_len
    val = {
        t: [_cast(b, device, dtype) for b in bs]
        for t, bs in validation_sets(
            spec,
            n_batches=hp.eval_batches,
            batch_size=hp.eval_batch_size or hp.batch_size,
            seed=VALIDATION_SEED,
        ).items()
    }
    # every rank draws the same global batch: each counts C from it by modality, as the single process does
    batches = CountedBatches(train_batches(spec, hp.mixture, hp.batch_size, seed), spec)
    for _ in range(state["step"]):  # the data stream is deterministic: skip what was trained on
        next(batches)
    metrics: dict = {}
    watch, saved_at = LossWatch(ema=state["ema"], first=state["first"]), state["step"]
    for step in range(state["step"] + 1, min(total, stop_at) + 1):
        lr_mult = lr_at(step - 1, total, hp)
        for group in base_optimizer.param_groups:
            group["lr"] = group["peak_lr"] * lr_mult
        loss = _step(engine, next(batches), rank, world, micro, accum, hp, device, dtype, dist)
        diverged = watch.update(loss)
        state.update(watch.state(), diverged=diverged, step=step)
        last = step == total or step == stop_at or state["diverged"]
        # the single process's cadence, and the last step too: Ray Train's result carries it
        save = checkpointing and (last or checkpoint_due(step, saved_at, hp.checkpoint_every))
        saved_at = step if save else saved_at
        if last or save or step % hp.eval_every == 0:
            metrics = _metrics(engine, val, batches, step, tokens_per_step, hp.lr * lr_mult, state, device)
            if state["step"] == total or state["diverged"]:
                metrics = _summary(metrics, state, batches, tokens_per_step, time.perf_counter() - started)
                metrics.update(_downstream(engine, spec, run, metrics, str(device), state["step"] == total))
            _report(engine, report, metrics, state, save)
        if state["diverged"]:
            break
    return metrics


def _step(engine, batch, rank, world, micro, accum, hp, device, dtype, dist) -> float:
    """One optimiser step over this rank's share of the global batch; returns the global token-mean loss."""
    n_global = int((batch["targets"] != IGNORE).sum())
    share = micro * accum
    summed = torch.zeros((), dtype=torch.float64)
    for k in range(accum):
        start = rank * share + k * micro
        out = engine(_cast(slice_batch(batch, start, start + micro), device, dtype))
        # DeepSpeed averages gradients over ranks: scale so the sum is the global token mean.
        weight = out.n_targets * world / max(n_global, 1)
        engine.backward(out.lm_loss * weight + hp.aux_loss_weight * out.aux_loss / accum, scale_wrt_gas=False)
        engine.step()
        summed += float(out.lm_loss.detach()) * out.n_targets
    dist.all_reduce(summed)
    return float(summed) / max(n_global, 1)


def _metrics(engine, val, batches, step, tokens_per_step, lr, state, device) -> dict:
    per_target, _ = evaluate(engine.module, val, device=str(device))
    out = {
        "step": step,
        "tokens": step * tokens_per_step,
        "flops": batches.flops_at[step],
        "lr": lr,
        "train_loss": float(state["ema"]),
        "val_loss": per_target["avg"],
    }
    out.update({f"val_loss_{t}": per_target[t] for t in TARGETS if t in per_target})
    return out


def _report(engine, report, metrics: dict, state: dict, save: bool) -> None:
    if not save:
        report(metrics, None)
        return
    with tempfile.TemporaryDirectory(prefix="sweeper-ckpt-") as tmp:
        deepspeed_engine.save(engine, tmp, client_state={"sweeper": dict(state)})
        report(metrics, tmp)


def _downstream(engine, spec, run: WorkerRun, metrics: dict, device: str, finished: bool) -> dict:
    """The tasks' scores and bits per byte, as the single process reports them. Every rank scores (a
    ZeRO-3 forward needs every rank's shard), on the same deterministic items."""
    losses = {t: metrics[f"loss_{t}"] for t in TARGETS if math.isfinite(metrics.get(f"loss_{t}", math.nan))}
    out = bits_per_byte_metrics(losses, None)
    if run.tasks and finished and metrics.get("status") == "ok":
        out.update(downstream_metrics(engine.module, spec, None, run.tasks, device=device))
    return out


def _summary(metrics: dict, state: dict, batches, tokens_per_step: int, seconds: float) -> dict:
    """The final report, in the keys the single-process trainable reports."""
    step = state["step"]
    return {
        **metrics,
        "step": step,
        "loss": metrics.get("val_loss", math.nan),
        **{f"loss_{t}": metrics.get(f"val_loss_{t}", math.nan) for t in TARGETS},
        "flops": batches.flops_at[step],
        "n_tokens_trained": step * tokens_per_step,
        "n_image_tokens": batches.counts.image,
        "n_text_tokens": step * tokens_per_step - batches.counts.image,
        "n_scored_tokens": batches.counts.scored,
        "train_loss": float(state["ema"]) if state["ema"] is not None else math.nan,
        "train_seconds": seconds,
        "status": "diverged" if state["diverged"] else "ok",
    }


# ---- the driver side: one TorchTrainer per trial --------------------------------------


def make_trainer(
    loop_config: dict,
    settings: DistributedSettings,
    *,
    storage_path: str,
    name: str,
    callbacks: list | None = None,
):
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    return TorchTrainer(
        worker_loop,
        train_loop_config={**loop_config, "distributed": settings.model_dump()},
        scaling_config=scaling_config(settings),
        torch_config=TorchConfig(backend="nccl" if settings.use_gpu else "gloo"),
        run_config=RunConfig(
            name=name,
            storage_path=storage_path,
            callbacks=callbacks or [],
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            failure_config=FailureConfig(max_failures=int(WorkerRun.of(loop_config).max_failures)),
        ),
    )


def train_distributed(
    spec,
    hp: TrainHParams,
    *,
    n_tokens: int,
    seed: int,
    settings: DistributedSettings,
    storage_path: str,
    name: str,
    stop_at_step: int | None = None,
    resume_from: str | None = None,
):
    """Run one point through TorchTrainer; returns Ray Train's Result (metrics: the final summary)."""
    point = {"kind": spec.kind, "size": spec.size, "n_tokens": int(n_tokens)}
    loop_config = {
        "point": point,
        "hparams": _hp_dict(hp),
        "seed": seed,
        "stop_at_step": stop_at_step,
        "resume_from": resume_from,
    }
    result = make_trainer(loop_config, settings, storage_path=storage_path, name=name).fit()
    return result


def result_from(metrics: dict, wall_time_s: float) -> TrainResult:
    losses = {t: metrics[f"loss_{t}"] for t in TARGETS if math.isfinite(metrics.get(f"loss_{t}", math.nan))}
    losses["avg"] = metrics.get("loss", math.nan)
    return TrainResult(
        steps=int(metrics["step"]),
        n_tokens=int(metrics["n_tokens_trained"]),
        flops=metrics["flops"],
        losses=losses,
        train_loss=metrics["train_loss"],
        wall_time_s=wall_time_s,
        diverged=metrics["status"] == "diverged",
        n_image_tokens=int(metrics["n_image_tokens"]),
        n_scored_tokens=int(metrics["n_scored_tokens"]),
    )


def _hp_dict(hp: TrainHParams) -> dict:
    out = hp.model_dump()
    out["mixture"] = list(hp.mixture) if isinstance(hp.mixture, tuple) else hp.mixture
    return out
