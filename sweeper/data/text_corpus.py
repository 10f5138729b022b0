"""Text from a Hugging Face `datasets` source, tokenized once into token shards.

The corpus (local jsonl/json/parquet/text/csv/arrow files, or a hub dataset where the cluster
is online) is streamed through a `tokenizers` tokenizer, one end-of-text id between documents,
and written as flat token shards (sweeper.data.shards) in a cache keyed by the files, the text
column and the tokenizer. Trials then read memory-mapped windows: deterministic for a seed and
resumable at the exact sample, like pre-tokenized shards, and no trial waits on tokenization.
The driver builds the cache while planning; a trial on a node that cannot see it builds the
same bytes itself.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from sweeper.data.bpe import eos_id, load_tokenizer
from sweeper.data.files import find_files
from sweeper.errors import SweeperInputError

BUILDERS = {
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".txt": "text",
    ".csv": "csv",
    ".arrow": "arrow",
}
DEFAULT_CACHE = ".sweeper/tokenized"
SHARD_TOKENS = 1 << 27  # 256 MiB of uint16 per shard
META = "meta.json"


def corpus_files(path: str, field: str = "data.path") -> list[str]:
    """The data files of `path`: one file, a folder (every file of a known format), or a glob."""
    return find_files(
        path,
        suffixes=tuple(BUILDERS),
        field=field,
        what="jsonl/parquet/text data files",
        how="or set data.dataset to a hub dataset",
    )


def builder_for(files: list[str], dataset: str | None, field: str) -> str:
    """The `datasets` builder: named, else from the files' extension."""
    if dataset:
        return dataset
    kinds = {BUILDERS.get(Path(f).suffix) for f in files}
    if len(kinds) != 1 or None in kinds:
        raise SweeperInputError(
            field,
            files[0],
            f"cannot tell the format from the extensions "
            f"{sorted({Path(f).suffix for f in files})}; set data.dataset to a datasets "
            "builder (json, parquet, text, csv, arrow)",
        )
    return kinds.pop()


def iter_texts(
    data: Mapping, path: str | None, field: str = "data.path", column_field: str = "data.text_field"
) -> Iterator[str]:
    """The text column of every row, in file order (streaming: the corpus is never loaded whole)."""
    import datasets

    datasets.disable_progress_bars()
    text_field = data.get("text_field") or "text"
    if path:
        files = corpus_files(path, field)
        builder = builder_for(files, data.get("dataset"), field)
        stream = datasets.load_dataset(builder, data_files=files, split="train", streaming=True)
    else:  # a hub dataset by name, where the cluster can reach the hub
        stream = datasets.load_dataset(data["dataset"], split=data.get("split") or "train", streaming=True)
    for row in stream:
        if text_field not in row:
            raise SweeperInputError(
                column_field,
                text_field,
                f"no such column in {path or data['dataset']}; its columns are {sorted(row)}",
            )
        text = row[text_field]
        if isinstance(text, str) and text:
            yield text


def _fingerprint(data: Mapping, path: str | None, tokenizer_path: str) -> str:
    """Files (name, size, mtime), column, builder and tokenizer bytes: any change makes a new cache entry."""
    import fsspec

    h = hashlib.sha256(Path(tokenizer_path).read_bytes())
    key = {k: data.get(k) for k in ("dataset", "text_field", "split")}
    if path:
        fs, _ = fsspec.core.url_to_fs(path)
        key["files"] = [
            (f, fs.size(f), str(fs.modified(f)) if hasattr(fs, "modified") else "")
            for f in corpus_files(path)
        ]
    h.update(json.dumps(key, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def tokenized_corpus(data: Mapping, path: str | None, field: str = "data.path") -> tuple[str, str]:
    """(folder of token shards, dtype) for the text at `path` under data.tokenizer, built once and cached."""
    tok_path = data.get("tokenizer")
    tok = load_tokenizer(tok_path)
    cache = Path(data.get("cache_dir") or DEFAULT_CACHE) / _fingerprint(data, path, tok_path)
    dtype = "uint16" if tok.get_vocab_size() <= 1 << 16 else "uint32"
    if (cache / META).is_file():
        return str(cache), dtype
    cache.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
    try:
        meta = _write_shards(tok, iter_texts(data, path, field), work, np.dtype(dtype))
        if meta["tokens"] == 0:
            raise SweeperInputError(
                field,
                path or data.get("dataset"),
                f"no text in column '{data.get('text_field') or 'text'}': every row was empty",
            )
        meta.update(tokenizer=str(tok_path), vocab_size=tok.get_vocab_size(), dtype=dtype, source=path)
        (work / META).write_text(json.dumps(meta, indent=1))
        work.chmod(0o755)  # mkdtemp makes it private; the cache is shared by every trial
        try:
            os.rename(work, cache)  # atomic: a concurrent builder of the same bytes may have won
        except OSError:
            pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return str(cache), dtype


def _write_shards(tok, texts: Iterator[str], out: Path, dtype: np.dtype, batch: int = 256) -> dict:
    sep = eos_id(tok)
    buffer: list[np.ndarray] = []
    n_buffered = n_tokens = n_docs = n_shards = 0

    def flush() -> None:
        nonlocal buffer, n_buffered, n_shards
        if n_buffered:
            np.concatenate(buffer).astype(dtype).tofile(out / f"train_{n_shards:04d}.bin")
            buffer, n_buffered, n_shards = [], 0, n_shards + 1

    pending: list[str] = []
    for text in itertools.chain(texts, [None]):  # None: flush the last batch
        if text is not None:
            pending.append(text)
        if pending and (text is None or len(pending) == batch):
            for enc in tok.encode_batch(pending, add_special_tokens=False):
                ids = np.asarray(enc.ids + ([sep] if sep is not None else []), dtype=np.int64)
                buffer.append(ids)
                n_buffered, n_tokens, n_docs = n_buffered + len(ids), n_tokens + len(ids), n_docs + 1
            pending = []
            if n_buffered >= SHARD_TOKENS:
                flush()
    flush()
    return {"documents": n_docs, "tokens": n_tokens, "shards": n_shards}
