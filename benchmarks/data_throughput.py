"""Data loader throughput against what the trainer consumes, in one run.

    .venv/bin/python benchmarks/data_throughput.py [--batches 20] [--pairs 400]

Writes its own corpora (flat uint16 token shards, and webdataset tar shards of real JPEG
image-caption pairs written with webdataset's TarWriter), then prints per DataLoader worker
(one process, nothing else running):

  - the token-shard loader's tokens/s at the tiny and the 275M rung's geometry,
  - the webdataset image-caption loader's tokens/s (decode, resize, patch, pack) at both,
  - the trainer's consumption: the tiny rung measured here; the 275M rung measured where a
    GPU is, else what one H100 consumes at 40% MFU (FLOPs per token from models.flops),
  - the ratio loader / trainer. Goal: >= 3x at the 275M rung on one H100,
  - how the webdataset loader scales with workers on this machine's cores: each worker lays out
    the other workers' sequences from their captions alone and decodes only its own images.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

H100_BF16 = 989e12
TARGET_MFU = 0.40


def write_caption_shards(
    root: Path, *, n_pairs: int, image_size: int, per_shard: int = 200, seed: int = 0
) -> Path:
    """img2dataset's layout: NNNNN.tar with KEY.jpg + KEY.txt, real JPEGs of the generated scenes."""
    import webdataset as wds
    from PIL import Image

    from models.config import ImageConfig
    from sweeper.data.images import caption, random_scene, render

    rng, draw = np.random.default_rng(seed), ImageConfig(image_size=image_size, patch_size=image_size)
    folder = root / f"pairs-{image_size}px"
    folder.mkdir(parents=True)
    for start in range(0, n_pairs, per_shard):
        with wds.TarWriter(str(folder / f"{start // per_shard:05d}.tar")) as sink:
            for i in range(start, min(n_pairs, start + per_shard)):
                scene = random_scene(rng)
                pix = ((render(scene, draw, rng) + 0.5).clip(0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
                out = io.BytesIO()
                Image.fromarray(pix).save(out, format="JPEG", quality=90)
                sink.write({"__key__": f"{i:09d}", "jpg": out.getvalue(), "txt": caption(scene).encode()})
    return folder


def loader_tokens_per_s(make, n_batches: int, workers: int = 1) -> float:
    """Tokens/s of the trials' loader (sweeper.data.loader.LoaderBatches) with `workers` DataLoader
    processes."""
    from sweeper.data.loader import LoaderBatches

    it = LoaderBatches(lambda: make(0), workers)
    for _ in range(workers):
        next(it)  # the workers are up and their first batches are out
    t0, tokens = time.perf_counter(), 0
    for _ in range(n_batches):
        tokens += next(it)["tokens"].numel()
    return tokens / (time.perf_counter() - t0)


def trainer_tokens_per_s(spec, batch_size: int, steps: int = 10) -> float:
    """The tiny rung's training steps on this CPU (generated data, prepared before timing)."""
    from models.registry import build_model
    from sweeper.data import train_batches
    from sweeper.train.loop import TrainHParams, make_optimizer, train_step

    hp = TrainHParams(lr=1e-3, batch_size=batch_size)
    torch.manual_seed(0)
    model = build_model(spec)
    optimizer = make_optimizer(model, hp, spec)
    stream = train_batches(spec, (1.0, 0.0, 0.0), batch_size, 0)
    batches = [next(stream) for _ in range(steps + 2)]
    for b in batches[:2]:
        train_step(model, b, optimizer, hp, 1.0)
    t0 = time.perf_counter()
    for b in batches[2:]:
        train_step(model, b, optimizer, hp, 1.0)
    return steps * batch_size * spec.seq_len / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=20, help="timed batches per loader")
    parser.add_argument("--pairs", type=int, default=400, help="image-caption pairs written per geometry")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from gpu_check import write_token_shards

    from models.flops import training_flops_per_token
    from models.registry import get_model_spec
    from sweeper.data.captions import CaptionShards
    from sweeper.data.packing import DocumentBatches
    from sweeper.data.shards import TokenShards, shard_batches
    from sweeper.data.tokenizer import CharTokenizer

    rungs = {"tiny": get_model_spec("early_fusion", "tiny-5"), "275M": get_model_spec("early_fusion", "275M")}
    b = args.batch_size
    with tempfile.TemporaryDirectory(prefix="data-throughput-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        tokens = write_token_shards(
            root, n_shards=1, tokens_per_shard=(args.batches + 8) * b * 1025 * 2, vocab=50432
        )
        pairs = {
            name: write_caption_shards(root, n_pairs=args.pairs, image_size=s.config.image.image_size)
            for name, s in rungs.items()
        }
        print(
            f"wrote token shards and {args.pairs} JPEG pairs per geometry in {time.perf_counter() - t0:.0f} s"
        )
        rates = {}
        for name, spec in rungs.items():
            shards = TokenShards(str(tokens), seq_len=spec.seq_len)
            captions = CaptionShards(str(pairs[name]), image=spec.config.image)
            rates[name, "text"] = loader_tokens_per_s(
                lambda seed, s=shards, sp=spec: shard_batches(
                    s, batch_size=b, seed=seed, image=sp.config.image
                ),
                args.batches,
            )
            rates[name, "pairs"] = loader_tokens_per_s(
                lambda seed, c=captions, sp=spec: DocumentBatches(
                    c, CharTokenizer(), target="caption", seq_len=sp.seq_len, batch_size=b, seed=seed
                ),
                max(4, args.batches // 4),
            )
            if name == "275M":
                cores = min(4, os.cpu_count() or 1)
                scaling = {
                    w: loader_tokens_per_s(
                        lambda seed, c=captions, sp=spec: DocumentBatches(
                            c, CharTokenizer(), target="caption", seq_len=sp.seq_len, batch_size=b, seed=seed
                        ),
                        max(4, args.batches // 4) * w,
                        workers=w,
                    )
                    for w in sorted({1, cores})
                }
        tiny = rungs["tiny"]
        consumption = {"tiny": trainer_tokens_per_s(tiny, b)}
        per_token = training_flops_per_token(
            rungs["275M"].config, rungs["275M"].seq_len, {"image": 0.0, "scored": 1.0}
        )
        consumption["275M"] = TARGET_MFU * H100_BF16 / per_token
    print(
        f"{'rung':6} {'loader':28} {'tokens/s per worker':>20} {'trainer tokens/s':>17} "
        f"{'loader/trainer':>15}"
    )
    for (name, kind), rate in rates.items():
        label = "token shards (text)" if kind == "text" else "webdataset JPEG + caption"
        print(
            f"{name:6} {label:28} {rate:>20,.0f} {consumption[name]:>17,.0f} "
            f"{rate / consumption[name]:>14.2f}x"
        )
    print(
        f"trainer: tiny = early_fusion {tiny.size} measured on this CPU (1 thread, batch {b}); "
        "275M = one H100 at "
        f"{TARGET_MFU:.0%} MFU, {per_token / 1e9:.2f} GFLOP per text token (computed, not measured: "
        "benchmarks/gpu_check.py measures it on a GPU)"
    )
    need = 3 * consumption["275M"]
    one = scaling[1]
    print(
        "275M webdataset through the trials' loader: "
        + ", ".join(f"{w} worker(s) {r:,.0f} tokens/s ({r / one:.2f}x)" for w, r in scaling.items())
        + f" on {os.cpu_count()} cores"
    )
    for kind in ("text", "pairs"):
        workers = int(np.ceil(need / rates["275M", kind]))
        print(f"275M goal (3x the trainer): {kind} needs {workers} worker(s) at this CPU's per-worker rate")


if __name__ == "__main__":
    main()
