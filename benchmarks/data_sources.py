"""Every data format a study brings, from files that installed packages ship, planned and trained.

    .venv/bin/python benchmarks/data_sources.py [--budget 4e11] [--sources token_shards,webdataset,...]

Builds, under a temporary folder, a corpus in each format from real files nobody wrote for this project:
text from the Python standard library's sources, images from every PNG/JPEG that the installed packages
ship (matplotlib's sample data, the system packages' icons under /usr/share, ...) with captions from
their file names. Then, per source,
`sweeper plan` (its checks, sizes and epochs) and a short trained grid sweep through local Ray Tune and
MLflow, and prints: trials, the most epochs a trial makes, C spent / planned (min and max over the
trials: goal within 2%), the sweep's wall time beside the plan's estimate (goal within 2x), and the corpus.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SOURCES = ("token_shards", "hf_text", "webdataset", "obelics", "mixture")


def stdlib_texts(limit: int = 400, chunk: int = 1500) -> list[str]:
    """Documents of up to `chunk` characters from the standard library's Python files."""
    texts = []
    for path in sorted(Path(os.__file__).parent.glob("*.py"))[:limit]:
        body = path.read_text(encoding="utf-8", errors="replace")
        texts += [body[i : i + chunk] for i in range(0, min(len(body), 6 * chunk), chunk)]
    return texts


def package_images(limit: int = 600) -> list[tuple[str, bytes]]:
    """(caption, encoded bytes) of the PNG and JPEG files the installed packages ship that Pillow opens."""
    from PIL import Image

    roots = [Path(np.__file__).resolve().parents[1], Path("/usr/share")]  # Python's and the system's packages
    out = []
    for path in sorted(p for root in roots for ext in ("png", "jpg", "jpeg") for p in root.rglob(f"*.{ext}")):
        raw = path.read_bytes()
        try:
            with Image.open(io.BytesIO(raw)) as im:
                im.verify()
        except Exception:  # noqa: BLE001 - a file Pillow cannot read is not an image for this corpus
            continue
        words = path.stem.replace("_", " ").replace("-", " ")
        out.append((f"a picture named {words} from {path.parent.name}.", raw))
        if len(out) == limit:
            break
    return out


def build(root: Path) -> dict[str, dict]:
    """Each source's `data:` section over the corpora written under `root`."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import webdataset as wds

    from sweeper.data.bpe import train_bpe

    texts, images = stdlib_texts(), package_images()
    tokenizer = train_bpe(texts, 512)
    tokenizer.save(str(root / "tokenizer.json"))
    (root / "text").mkdir()
    (root / "text" / "part-0.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    (root / "shards").mkdir()
    ids = [i for t in texts for i in tokenizer.encode(t).ids + [0]]
    np.asarray(ids, np.uint16).tofile(root / "shards" / "train_000.bin")
    (root / "pairs").mkdir()
    with wds.TarWriter(str(root / "pairs" / "00000.tar")) as sink:
        for k, (caption, raw) in enumerate(images):
            sink.write(
                {
                    "__key__": f"{k:06d}",
                    "png" if raw[:4] == b"\x89PNG" else "jpg": raw,
                    "txt": caption.encode(),
                }
            )
    rows_t, rows_i = [], []
    for k in range(0, len(texts) - 1, 2):  # text, picture, text: documents longer than one sequence
        caption, raw = images[k % len(images)]
        rows_t.append([texts[k], None, f"{caption} {texts[k + 1]}"])
        rows_i.append([None, raw, None])
    (root / "docs").mkdir()
    pq.write_table(
        pa.table(
            {
                "texts": pa.array(rows_t, pa.list_(pa.string())),
                "images": pa.array(rows_i, pa.list_(pa.binary())),
            }
        ),
        root / "docs" / "part-0.parquet",
    )
    tok = str(root / "tokenizer.json")
    sections = {
        "token_shards": {
            "source": "token_shards",
            "path": str(root / "shards"),
            "tokenizer": tok,
            "val_sequences": 16,
        },
        "hf_text": {
            "source": "hf_text",
            "path": str(root / "text"),
            "tokenizer": tok,
            "cache_dir": str(root / "cache"),
            "val_sequences": 16,
        },
        "webdataset": {
            "source": "webdataset",
            "path": str(root / "pairs"),
            "tokenizer": tok,
            "val_sequences": 16,
        },
        "obelics": {"source": "obelics", "path": str(root / "docs"), "tokenizer": tok, "val_sequences": 16},
    }
    sections["mixture"] = {
        "source": "mixture",
        "tokenizer": tok,
        "cache_dir": str(root / "cache"),
        "targets": {
            "caption": sections["webdataset"],
            "interleaved": sections["obelics"],
            "text": sections["hf_text"],
        },
    }
    return sections


MIXTURES = {
    "token_shards": [0, 0, 1],
    "hf_text": [0, 0, 1],
    "webdataset": [1, 0, 0],
    "obelics": [0, 1, 0],
    "mixture": [0.4, 0.3, 0.3],
}


def space(name: str, data: dict, budget: float) -> dict:
    kind = "dense_text" if name in ("token_shards", "hf_text") else "early_fusion"
    return {
        "space": f"data-{name}",
        "model": {"kind": kind, "ladder": "tiny", "sizes": ["tiny-1", "tiny-2", "tiny-3"]},
        "budget": budget,
        "design": "grid",
        "throughput_flops": 1.0e10,
        "budgets": {"n_slices": 1, "min_tokens_per_param": 0.5, "min_steps": 20},
        "training": {
            "batch_size": 8,
            "eval_every": 100,
            "eval_batches": 2,
            **({} if kind == "dense_text" else {"mixture": MIXTURES[name]}),
        },
        "fit": {"n_bootstrap": 0},
        "ray": {"max_concurrent_trials": 2, "cpus_per_trial": 1},
        "data": data,
    }


def statuses(frame) -> str:
    return str(dict(frame["status"].value_counts()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=4e11)
    parser.add_argument("--sources", default=",".join(SOURCES))
    args = parser.parse_args()

    import ray

    from sweeper import Sweeper
    from sweeper.config.schema import load_config
    from sweeper.plan.trials import make_plan

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory(prefix="sweeper-data-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        sections = build(root)
        print(f"corpora built in {time.perf_counter() - started:.0f} s under {root}")
        print(f"{'source':<14}{'trials':>7}{'epochs':>8}{'C/planned':>14}{'wall s':>8}{'est s':>7}  corpus")
        for name in args.sources.split(","):
            path = root / f"{name}.yaml"
            path.write_text(yaml.safe_dump(space(name, sections[name], args.budget)))
            plan = make_plan(load_config(str(path)))
            started = time.perf_counter()
            result = Sweeper(str(path), tracking_uri=f"sqlite:///{root}/mlflow.db").run(
                progress=lambda line: None
            )
            wall = time.perf_counter() - started
            frame = result.runs.frame
            ratio = (frame["flops"] / frame["budget"]).to_numpy(float)
            corpus = ", ".join(f"{s.size:,d} {s.unit}" for s in plan.sources)
            print(
                f"{name:<14}{len(frame):>7}{max(t.epochs for t in plan.trials):>8.2f}"
                f"{f'{ratio.min():.3f}-{ratio.max():.3f}':>14}{wall:>8.0f}{plan.est_wall_seconds:>7.0f}"
                f"  {corpus}{' (repeated: the plan warns)' if plan.repetition_warning else ''}"
                f"{'' if (frame['status'] == 'ok').all() else '  NOT ALL OK: ' + statuses(frame)}"
            )
    ray.shutdown()


if __name__ == "__main__":
    main()
