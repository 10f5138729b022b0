"""Training and validation data of a trial, from the source its `data:` section names.

`generated` (the default) is sweeper.data's procedural mixture; `token_shards` reads
pre-tokenized text (sweeper.data.shards); `hf_text` tokenizes a Hugging Face `datasets`
source into such shards once (sweeper.data.text_corpus); `webdataset` reads image-caption tar
shards (sweeper.data.captions); `obelics` reads interleaved image-text documents
(sweeper.data.interleaved). All give the same batch dicts, so the loop, the FLOP count
and the evaluation do not know which one they get.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path

import torch

from sweeper.data import TARGETS, CharTokenizer, data_config, mixture_for, train_batches, validation_sets
from sweeper.data.captions import CaptionShards
from sweeper.data.interleaved import InterleavedDocs
from sweeper.data.loader import advance
from sweeper.data.mixtures import target_schedule
from sweeper.data.packing import DocumentBatches, DocumentPacker
from sweeper.data.shards import TokenShards, shard_batches, text_batch
from sweeper.data.text_corpus import DEFAULT_CACHE, tokenized_corpus
from sweeper.errors import SweeperInputError


def _source(data: Mapping | None) -> str:
    return (data or {}).get("source", "generated")


@lru_cache(maxsize=8)
def open_shards(
    path: str, dtype: str, seq_len: int, holdout: int, vocab_size: int | None = None, field: str = "data.path"
) -> TokenShards:
    """One reader per (corpus, geometry) and process: training and evaluation share the memory maps."""
    return TokenShards(
        path, seq_len=seq_len, dtype=dtype, vocab_size=vocab_size, field=field, holdout=holdout
    )


def for_trials(data: Mapping) -> dict:
    """The `data:` section as trials need it: local paths made absolute, since a Tune trial runs in its own
    working directory. URLs (s3://, hf://...) pass unchanged."""
    out = dict(data)
    if _source(data) in ("hf_text", "mixture"):
        out["cache_dir"] = out.get("cache_dir") or DEFAULT_CACHE
    if _source(data) == "mixture":  # every target's section with the shared tokenizer and cache
        shared = {k: data.get(k) for k in ("tokenizer", "cache_dir", "bad_images") if data.get(k)}
        out["targets"] = {
            t: {**sub, **{k: v for k, v in shared.items() if not sub.get(k)}}
            for t, sub in (data.get("targets") or {}).items()
        }
        out["targets"] = {t: for_trials(sub) for t, sub in out["targets"].items()}
    for key in ("path", "val_path", "tokenizer", "cache_dir"):
        value = out.get(key)
        if value and "://" not in value:
            out[key] = str(Path(value).expanduser().absolute())
    return out


def model_vocab(data: Mapping | None, vocab_size: int = 0) -> int | None:
    """Embedding rows for the models: `model.vocab_size` if set, else data.tokenizer's vocabulary rounded up
    to a multiple of 64, else None (the ladder's). A tokenizer larger than the set size fails."""
    if not (data or {}).get("tokenizer") or _source(data) == "generated":
        return vocab_size or None
    from sweeper.data.bpe import load_tokenizer

    n = load_tokenizer(data.get("tokenizer")).get_vocab_size()
    if vocab_size and n > vocab_size:
        raise SweeperInputError(
            "data.tokenizer",
            data.get("tokenizer"),
            f"its vocabulary of {n} ids does not fit "
            f"the model's embedding of {vocab_size} rows; raise model.vocab_size, set it to 0 "
            f"(sized from the tokenizer), or train a tokenizer with --vocab-size {vocab_size}",
        )
    return vocab_size or -(-n // 64) * 64


def shard_location(data: Mapping, field: str = "data.path") -> tuple[str, str]:
    """(token shards, dtype) of the training (`data.path`) or validation (`data.val_path`) corpus."""
    path = data.get(field.removeprefix("data."))
    if _source(data) == "hf_text":
        return tokenized_corpus(data, path, field)
    return path, data.get("dtype", "uint16")


def training_shards(spec, data: Mapping, vocab_size: int | None = None) -> TokenShards:
    holdout = 0 if data.get("val_path") else int(data.get("val_sequences", 64))
    path, dtype = shard_location(data)
    return open_shards(path, dtype, spec.seq_len, holdout, vocab_size)


def validation_shards(spec, data: Mapping, vocab_size: int | None = None) -> TokenShards:
    path, dtype = shard_location(data, "data.val_path")
    return open_shards(path, dtype, spec.seq_len, 0, vocab_size, field="data.val_path")


def packer_tokenizer(data: Mapping):
    """data.tokenizer behind the packer's interface, else the generated data's character tokenizer."""
    if not data.get("tokenizer"):
        return CharTokenizer()
    from sweeper.data.bpe import TextTokenizer, load_tokenizer

    return TextTokenizer(load_tokenizer(data["tokenizer"]))


DOCUMENT_SOURCES = {"webdataset": "caption", "obelics": "interleaved"}  # source -> the target it supplies


@lru_cache(maxsize=8)
def open_documents(
    source: str,
    path: str,
    image,
    holdout: int,
    bad_images: str,
    field: str,
    dataset: str | None,
    cache_dir: str | None,
):
    if source == "webdataset":
        return CaptionShards(path, image=image, holdout=holdout, bad_images=bad_images, field=field)
    return InterleavedDocs(
        path,
        image=image,
        holdout=holdout,
        bad_images=bad_images,
        field=field,
        dataset=dataset,
        cache_dir=cache_dir,
    )


def documents(spec, data: Mapping, field: str = "data.path"):
    """The caption pairs (webdataset) or interleaved documents (obelics) of `data.path` or `data.val_path`."""
    image = data_config(spec).image
    if image is None:
        raise SweeperInputError(
            "data.source",
            data["source"],
            f"{spec.kind} takes no images; use an early_fusion, late_fusion or moe model",
        )
    val = field == "data.val_path"
    holdout = 0 if val or data.get("val_path") else int(data.get("val_sequences", 64))
    return open_documents(
        data["source"],
        data["val_path" if val else "path"],
        image,
        holdout,
        data.get("bad_images", "skip"),
        field,
        data.get("dataset"),
        data.get("cache_dir"),
    )


def training_stream(spec, mixture, batch_size: int, seed: int, data: Mapping | None = None) -> Iterator[dict]:
    """Endless, deterministic training batches of `batch_size` sequences for `spec`."""
    if _source(data) == "generated":
        return train_batches(spec, mixture, batch_size, seed)
    if _source(data) == "mixture":
        weights = mixture_for(data_config(spec), mixture)
        streams = {
            k: training_stream(spec, _only(k), 1, seed, data["targets"][t])
            for k, t in enumerate(TARGETS)
            if weights[k] > 0
        }
        return MixedBatches(streams, weights, batch_size)
    if _source(data) in DOCUMENT_SOURCES:
        return DocumentBatches(
            documents(spec, data),
            packer_tokenizer(data),
            target=DOCUMENT_SOURCES[_source(data)],
            seq_len=spec.seq_len,
            batch_size=batch_size,
            seed=seed,
        )
    return shard_batches(
        training_shards(spec, data), batch_size=batch_size, seed=seed, image=data_config(spec).image
    )


def held_out_sets(
    spec, *, n_batches: int, batch_size: int, seed: int, data: Mapping | None = None
) -> dict[str, list[dict]]:
    """Validation batches per target, from data no training stream of the source visits."""
    if _source(data) == "generated":
        return validation_sets(spec, n_batches=n_batches, batch_size=batch_size, seed=seed)
    if _source(data) == "mixture":  # each target on its own source's held-out data
        return {
            t: held_out_sets(spec, n_batches=n_batches, batch_size=batch_size, seed=seed, data=sub)[t]
            for t, sub in data["targets"].items()
            if t in data_config(spec).targets
        }
    if _source(data) in DOCUMENT_SOURCES:
        target = DOCUMENT_SOURCES[_source(data)]
        return {target: held_out_documents(spec, data, target, n_batches=n_batches, batch_size=batch_size)}
    if data.get("val_path"):
        windows = validation_shards(spec, data).samples(seed=0)
        pool = [next(windows) for _ in range(n_batches * batch_size)]
    else:
        pool = training_shards(spec, data).held_out()
    image = data_config(spec).image
    batches = [text_batch(pool[i : i + batch_size], image) for i in range(0, len(pool), batch_size)][
        :n_batches
    ]
    return {"text": batches}


def held_out_documents(spec, data: Mapping, target: str, *, n_batches: int, batch_size: int) -> list[dict]:
    """Batches from `val_path`, else from the held-out tail of the documents (cycled if it is short)."""
    if data.get("val_path"):
        docs = documents(spec, data, "data.val_path")
        ids = itertools.cycle(range(len(docs)))
    else:
        docs = documents(spec, data)
        ids = itertools.cycle(range(docs.n_train, len(docs)))
    packer, pending = DocumentPacker(docs, packer_tokenizer(data), spec.seq_len), []
    target_id = TARGETS.index(target)
    return [packer.batch(ids, pending, batch_size, target_id) for _ in range(n_batches)]


def _only(k: int) -> tuple[float, float, float]:
    return tuple(1.0 if i == k else 0.0 for i in range(len(TARGETS)))  # type: ignore[return-value]


class MixedBatches:
    """Batches whose sequences come from each target's own stream in the mixture's stratified order
    (sweeper.data.mixtures.target_schedule): after n sequences, each target's count is within one of
    n * weight. No `skip`: a resumed run replays the batches before its step. `pass_over(n)` advances each
    target's stream past its share of n batches as cheaply as that stream can
    (sweeper.data.loader.advance)."""

    def __init__(self, streams: dict[int, Iterator[dict]], weights, batch_size: int):
        self.streams, self.batch_size, self.order = streams, batch_size, target_schedule(weights)

    @property
    def skipped_files(self) -> set[str]:
        return set().union(*(getattr(s, "skipped_files", ()) for s in self.streams.values()))

    @property
    def skipped_images(self) -> int:
        return len(self.skipped_files)

    def __iter__(self):
        return self

    def pass_over(self, n_batches: int) -> None:
        counts = collections.Counter(next(self.order) for _ in range(n_batches * self.batch_size))
        for k, n in counts.items():
            advance(self.streams[k], n)

    def __next__(self) -> dict:
        parts = [next(self.streams[next(self.order)]) for _ in range(self.batch_size)]
        return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
