"""GPU check: the 275M early-fusion rung in bf16 on one GPU, from data this script writes itself.

Ready to run where a GPU is: `python benchmarks/gpu_check.py` (under 5 minutes on an H100).
It writes token shards (flat uint16 `.bin` files, the nanoGPT convention) and webdataset
tar shards of JPEG image-caption pairs (img2dataset's layout); then prints

  - the loaders' tokens/s on their own (token shards and webdataset pairs through DataLoader
    workers, and the procedural generator the embedded default trains on),
  - the trainer's tokens/s on the 275M rung in bf16 autocast with fused AdamW, measured
    after a warmup, with MFU = (FLOPs counted on the trained batches) / time / the device's
    bf16 dense peak,
  - the device each trial of a small real sweep (Ray Tune + MLflow, ray.gpus_per_trial=1)
    trained on, read back from MLflow (`sweeper.device`).

Without a GPU it says so and exits 1: nothing here is meaningful on a CPU.

    python benchmarks/gpu_check.py [--steps 300] [--batch-size 16] [--workers 4] [--no-sweep]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

# bf16 dense tensor-core peaks (no sparsity), FLOP/s, from NVIDIA's data sheets; first match wins.
PEAK_BF16 = (
    ("H200", 989e12),
    ("H100 NVL", 835e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("A100", 312e12),
)


def peak_flops(device_name: str, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    return next((peak for key, peak in PEAK_BF16 if key.lower() in device_name.lower()), None)


def write_token_shards(
    root: Path, *, n_shards: int, tokens_per_shard: int, vocab: int, seed: int = 0
) -> Path:
    """Flat uint16 shards of a learnable stream: 1,024 chains through a sparse random Markov
    chain over a Zipf vocabulary (each token has 4 likely successors), laid end to end."""
    rng = np.random.default_rng(seed)
    folder = root / "tokens"
    folder.mkdir(parents=True)
    successors = rng.zipf(1.3, size=(vocab, 4)) % vocab
    chains = 1024
    length = -(-tokens_per_shard // chains)
    for i in range(n_shards):
        out = np.empty((chains, length), np.uint16)
        tok = rng.integers(0, vocab, chains)
        for j in range(length):  # every chain steps at once
            tok = successors[tok, rng.integers(0, 4, chains)]
            out[:, j] = tok
        out.reshape(-1)[:tokens_per_shard].tofile(folder / f"train_{i:03d}.bin")
    return folder


class IndependentStreams(torch.utils.data.IterableDataset):
    """One seeded stream per DataLoader worker: the generated data at W times one process's rate (a trial's
    loader would build and drop the other workers' generated batches), so it does not starve the GPU."""

    def __init__(self, make, seed: int):
        self.make, self.seed = make, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        return self.make(self.seed + (info.id if info else 0))


def loader(make, seed: int, workers: int):
    """The trials' loader (sweeper.data.loader.LoaderBatches: worker i builds batches i, i + W, ...)."""
    from sweeper.data.loader import LoaderBatches

    return LoaderBatches(lambda: make(seed), workers) if workers else make(seed)


def loader_rate(batches, n: int) -> float:
    """Tokens per second a loader delivers with nothing else running."""
    it = iter(batches)
    for _ in range(max(1, getattr(batches, "workers", 1))):
        next(it)  # workers started, their first batches out
    t0, tokens = time.perf_counter(), 0
    for _ in range(n):
        tokens += next(it)["tokens"].numel()
    return tokens / (time.perf_counter() - t0)


def train_rate(spec, batches, *, steps: int, warmup: int, lr: float) -> dict:
    """Train `spec` on CUDA in bf16 autocast with fused AdamW (the loop's own pieces); timed after warmup."""
    from models.flops import TokenCounts
    from models.registry import build_model
    from sweeper.train.loop import TrainHParams, make_optimizer, train_step

    hp = TrainHParams(lr=lr, batch_size=1)
    torch.manual_seed(0)
    model = build_model(spec).cuda()
    optimizer = make_optimizer(model, hp, spec, fused=True)
    it, counts, losses = iter(batches), TokenCounts(), []
    for step in range(warmup + steps):
        if step == warmup:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        batch = next(it)
        if step >= warmup:
            counts.add(batch)
        batch = {k: v.cuda(non_blocking=True) for k, v in batch.items()}
        losses.append(train_step(model, batch, optimizer, hp, min(1.0, (step + 1) / warmup))["lm_loss"])
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    flops = counts.flops(spec.config, spec.seq_len)
    return {
        "tokens_per_s": counts.positions / seconds,
        "flops_per_s": flops / seconds,
        "seconds": seconds,
        "first_loss": losses[0],
        "last_loss": float(np.mean(losses[-10:])),
        "device": str(next(model.parameters()).device),
        "autocast_bf16": True,
        "fused_adamw": True,
    }


def sweep_devices(root: Path) -> dict[str, str]:
    """A small real sweep with ray.gpus_per_trial=1: where did each trial train (MLflow tag
    sweeper.device)."""
    from mlflow.tracking import MlflowClient

    from sweeper import Sweeper

    uri = f"sqlite:///{root}/mlflow.db"
    sweeper = Sweeper(
        "tiny",
        kind="early_fusion",
        budget=2e12,
        slices=[6e10, 1.2e11],
        design="grid",
        sizes=["tiny-1", "tiny-2", "tiny-3"],
        tracking_uri=uri,
        experiment="gpu-check",
        n_bootstrap=10,
        **{
            "budgets.min_tokens_per_param": 0.1,
            "budgets.min_steps": 10,
            "training.eval_every": 20,
            "training.eval_batches": 2,
            "ray.gpus_per_trial": 1,
            "ray.cpus_per_trial": 1,
            "ray.storage_path": str(root / "ray"),
        },
    )
    result = sweeper.run(progress=lambda line: None)
    client = MlflowClient(uri)
    runs = client.search_runs([result.experiment_id], "tags.`sweeper.point_id` != ''")
    return {
        r.data.tags["sweeper.point_id"]: r.data.tags.get(
            "sweeper.device", r.data.tags.get("sweeper.error", "?")
        )
        for r in runs
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="timed training steps on token shards")
    parser.add_argument(
        "--multimodal-steps", type=int, default=40, help="timed steps on generated image-text data"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="sequences of 1,024 positions per step")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers per loader")
    parser.add_argument(
        "--peak-tflops", type=float, help="bf16 dense peak when the device is not in the table"
    )
    parser.add_argument("--no-sweep", action="store_true", help="skip the small Ray Tune sweep")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit(
            f"gpu_check: no CUDA GPU visible (torch {torch.__version__}, CUDA build {torch.version.cuda}, "
            f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); run it on a GPU node. "
            "Nothing was measured."
        )
    from data_throughput import write_caption_shards

    from models.registry import get_model_spec
    from sweeper.data import train_batches
    from sweeper.data.captions import CaptionShards
    from sweeper.data.packing import DocumentBatches
    from sweeper.data.shards import TokenShards, shard_batches
    from sweeper.data.tokenizer import CharTokenizer

    name = torch.cuda.get_device_name()
    peak = peak_flops(name, args.peak_tflops)
    spec = get_model_spec("early_fusion", "275M")
    image, b = spec.config.image, args.batch_size
    print(
        f"device: {name} (cuda:{torch.cuda.current_device()}), torch {torch.__version__}, "
        f"bf16 peak {'%.0f TFLOP/s' % (peak / 1e12) if peak else 'unknown (pass --peak-tflops)'}"
    )
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        root = Path(tmp)
        need = (args.steps + 40) * b * (spec.seq_len + 1)
        t0 = time.perf_counter()
        folder = write_token_shards(
            root, n_shards=2, tokens_per_shard=need // 2 + 1, vocab=spec.config.vocab_size
        )
        print(
            f"wrote 2 uint16 token shards, {need / 1e6:.1f}M tokens, in {time.perf_counter() - t0:.0f} s: "
            f"{folder}"
        )
        t0 = time.perf_counter()
        pair_folder = write_caption_shards(root, n_pairs=2000, image_size=image.image_size)
        print(
            f"wrote 2,000 JPEG image-caption pairs as webdataset shards in {time.perf_counter() - t0:.0f} s"
        )
        pairs = CaptionShards(str(pair_folder), image=image)
        shards = TokenShards(str(folder), seq_len=spec.seq_len, vocab_size=spec.config.vocab_size)

        def text(seed):
            return shard_batches(shards, batch_size=b, seed=seed, image=image)

        def generated(seed):
            return train_batches(spec, (0.45, 0.45, 0.10), b, seed)

        shard_loader = loader(text, 0, args.workers)
        print(
            f"loader, token shards: {loader_rate(text(0), 20):,.0f} tokens/s in one process; "
            f"{loader_rate(shard_loader, 60):,.0f} tokens/s through {args.workers} workers"
        )

        def captions(seed):
            return DocumentBatches(
                pairs, CharTokenizer(), target="caption", seq_len=spec.seq_len, batch_size=b, seed=seed
            )

        pair_loader = loader(captions, 2, args.workers)
        print(
            f"loader, webdataset JPEG pairs: {loader_rate(captions(0), 4):,.0f} tokens/s in one process; "
            f"{loader_rate(pair_loader, 20):,.0f} tokens/s through {args.workers} workers"
        )
        gen_one = loader_rate(generated(0), 2)
        print(
            f"loader, generated 45/45/10 image-text: {gen_one:,.0f} tokens/s in one process; "
            f"~{gen_one * args.workers:,.0f} with {args.workers} workers (one process each)"
        )
        lr = 1.5e-3  # the paper's LR for this width (Table 6)
        text_run = train_rate(spec, shard_loader, steps=args.steps, warmup=20, lr=lr)
        report("train, 275M early fusion on token shards", text_run, peak)
        generated_loader = torch.utils.data.DataLoader(
            IndependentStreams(generated, 1), batch_size=None, num_workers=args.workers, pin_memory=True
        )
        mm_run = train_rate(spec, generated_loader, steps=args.multimodal_steps, warmup=5, lr=lr)
        report("train, 275M early fusion on generated 45/45/10 image-text", mm_run, peak)
        ratio = loader_rate(shard_loader, 60) / text_run["tokens_per_s"]
        print(f"token-shard loader / trainer consumption: {ratio:.1f}x")
        if not args.no_sweep:
            for point, device in sorted(sweep_devices(root).items()):
                print(f"sweep trial {point}: trained on {device}")


def report(title: str, run: dict, peak: float | None) -> None:
    mfu = f"{run['flops_per_s'] / peak:.1%}" if peak else "n/a"
    print(
        f"{title}: {run['tokens_per_s']:,.0f} tokens/s, {run['flops_per_s'] / 1e12:.0f} TFLOP/s, MFU {mfu} "
        f"({run['seconds']:.0f} s timed; loss {run['first_loss']:.2f} -> {run['last_loss']:.2f}; "
        f"{run['device']}, bf16 autocast, fused AdamW)"
    )
    if not math.isfinite(run["last_loss"]):
        print(f"  warning: the loss is not finite in '{title}'")


if __name__ == "__main__":
    main()
