"""Training throughput per model kind: tokens/s, achieved FLOP/s and (on a GPU) MFU.

    python benchmarks/train_throughput.py                       # every kind, tiny-5, this CPU
    python benchmarks/train_throughput.py --device cuda --dtype bf16 --kind early_fusion --size 275M

FLOP/s uses the exact training FLOPs of the batches actually run (models.flops,
held to torch's FlopCounterMode by the tests). MFU = achieved / peak dense
bf16 FLOP/s of the GPU. Data is generated before timing, so this measures the
training step (forward, backward, clip, AdamW), the thing the FLOP model counts.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from models.flops import batch_composition, training_flops_per_token
from models.registry import KINDS, build_model, get_model_spec
from sweeper.data import train_batches
from sweeper.train.loop import TrainHParams, make_optimizer, train_step

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12}  # dense, no sparsity


def peak_flops(device: str) -> float | None:
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def setup_kind(kind: str, size: str, args) -> dict:
    spec = get_model_spec(kind, size)
    torch.manual_seed(0)
    model = build_model(spec).to(args.device)
    if args.compile:
        model = torch.compile(model)
    hp = TrainHParams(lr=1e-3, batch_size=args.batch_size)
    opt = make_optimizer(model, hp, spec)
    it = train_batches(spec, None, args.batch_size, seed=0)
    batches = [{k: v.to(args.device) for k, v in next(it).items()} for _ in range(min(args.steps, 8))]
    comp = [batch_composition(b) for b in batches]
    avg = {k: sum(c[k] for c in comp) / len(comp) for k in ("image", "scored")}
    fpt = training_flops_per_token(spec.config, spec.seq_len, avg)
    amp = (
        torch.autocast(args.device, dtype=torch.bfloat16)
        if args.dtype == "bf16"
        else contextlib.nullcontext()
    )
    state = {
        "kind": kind,
        "size": size,
        "N": spec.n_params,
        "flops_per_token": fpt,
        "tokens_s": 0.0,
        "run": lambda n: _steps(model, batches, opt, hp, amp, n, args.device),
    }
    state["run"](args.warmup)  # allocator, kernels, compile
    state["tokens_per_step"] = args.batch_size * spec.seq_len
    return state


def _steps(model, batches, opt, hp, amp, n: int, device: str) -> float:
    """Seconds for n training steps."""
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(n):
        with amp:
            train_step(model, batches[i % len(batches)], opt, hp, 1.0)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(states: list[dict], args) -> None:
    """Best of `repeats` rounds, kinds interleaved, so load from other jobs on a
    shared machine hits every kind alike and the best round is the least disturbed."""
    for _ in range(args.repeats):
        for st in states:
            tokens_s = args.steps * st["tokens_per_step"] / st["run"](args.steps)
            st["tokens_s"] = max(st["tokens_s"], tokens_s)
            st["flops_s"] = st["tokens_s"] * st["flops_per_token"]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", choices=KINDS + ("all",), default="all")
    p.add_argument("--size", default=None, help="registry size (default tiny-5 on CPU, 275M on CUDA)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--batch-size", type=int, default=None, help="sequences per step (16 CPU, 16 CUDA)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3, help="timed rounds; the best is reported")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = p.parse_args(argv)
    args.size = args.size or ("275M" if args.device == "cuda" else "tiny-5")
    args.batch_size = args.batch_size or 16
    args.steps = args.steps or (20 if args.device == "cuda" else 10)
    torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    kinds = KINDS if args.kind == "all" else (args.kind,)
    peak = peak_flops(args.device)
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} thread(s)"
    print(
        f"# train throughput on {where}, {args.dtype}, batch {args.batch_size} sequences, "
        f"best of {args.repeats} x {args.steps} timed steps"
    )
    print(
        f"{'kind':<13} {'size':<7} {'N':>11} {'FLOPs/token':>12} {'tokens/s':>10} {'FLOP/s':>10}"
        + ("  MFU" if peak else "")
    )
    rows = [setup_kind(kind, args.size, args) for kind in kinds]
    measure(rows, args)
    for r in rows:
        mfu = f"  {r['flops_s'] / peak:.1%}" if peak else ""
        print(
            f"{r['kind']:<13} {r['size']:<7} {r['N']:>11,} {r['flops_per_token']:>12.3g} "
            f"{r['tokens_s']:>10.0f} "
            f"{r['flops_s']:>10.3g}{mfu}"
        )
    if len(rows) > 1:
        base = rows[0]
        print(
            "tokens/s relative to",
            base["kind"] + ":",
            ", ".join(f"{r['kind']} {r['tokens_s'] / base['tokens_s']:.2f}" for r in rows[1:]),
        )


if __name__ == "__main__":
    main()
