"""What a real source's training batches hold, measured on its first sequences before anything trains.

Two things the plan needs that a formula cannot give for data it did not write: the share of positions
that are image patches and scored text targets (training FLOPs per position depend on both, so D for a
slice's C does too: models.flops), and how fast a trial goes through the corpus (its epochs, since
repeated data bends the law: Muennighoff et al. 2023). The generated source never repeats and its
composition is known in closed form, so it is not measured.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from models.flops import TokenCounts, mixture_composition
from sweeper.data import TARGETS, data_config, mixture_for

MEASURED_SEQUENCES = 256  # enough that a source's composition is known to about 1%


@dataclass(frozen=True)
class SourceSize:
    """One source of a trial's data: its training items, and how many of them a sequence takes."""

    path: str
    unit: str  # "tokens", "pairs" or "documents"
    size: int  # training items (held-out ones excluded)
    per_sequence: float  # items one training sequence consumes
    share: float = 1.0  # of the training sequences (a mixture's weight)

    def epochs(self, n_sequences: float) -> float:
        return n_sequences * self.share * self.per_sequence / self.size

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "unit": self.unit,
            "size": self.size,
            "per_sequence": self.per_sequence,
            "share": self.share,
        }


@dataclass(frozen=True)
class DataUse:
    composition: tuple[float, float]  # (image, scored) shares of training positions
    sources: tuple[SourceSize, ...]
    seconds_per_sequence: float = (
        0.0  # building a training sequence here (decoding, packing): the plan's time
    )

    def epochs(self, n_sequences: float) -> float:
        """The most any source of the trial is repeated over `n_sequences` training sequences."""
        return max((s.epochs(n_sequences) for s in self.sources), default=0.0)


def measure(spec, data: Mapping, mixture, n_sequences: int = MEASURED_SEQUENCES) -> DataUse:
    """The composition and sizes of `data` (a for_trials section) as `spec` trains on it at `mixture`."""
    from sweeper.data.sources import DOCUMENT_SOURCES, documents, training_shards, training_stream

    if data["source"] == "mixture":
        weights = dict(zip(TARGETS, mixture_for(data_config(spec), mixture)))
        parts = {
            t: measure(spec, data["targets"][t], tuple(float(t == u) for u in TARGETS), n_sequences)
            for t in TARGETS
            if weights[t] > 0
        }
        comp = mixture_composition({t: u.composition for t, u in parts.items()}, weights)
        return DataUse(
            (comp["image"], comp["scored"]),
            tuple(_with_share(s, weights[t]) for t, u in parts.items() for s in u.sources),
            sum(weights[t] * u.seconds_per_sequence for t, u in parts.items()) / sum(weights.values()),
        )
    stream = training_stream(spec, mixture, n_sequences, 0, data)
    started = time.perf_counter()
    counts = TokenCounts.of(next(stream))
    seconds = (time.perf_counter() - started) / n_sequences
    composition = (counts.image / counts.positions, counts.scored / counts.positions)
    if data["source"] in DOCUMENT_SOURCES:
        docs = documents(spec, data)
        unit = "pairs" if data["source"] == "webdataset" else "documents"
        size = SourceSize(data["path"], unit, docs.n_train, stream.packer.documents_read / n_sequences)
    else:
        shards = training_shards(spec, data)
        window = shards.seq_len + 1
        size = SourceSize(
            data.get("path") or data.get("dataset") or "", "tokens", shards.n_windows * window, float(window)
        )
    return DataUse(composition, (size,), seconds)


def _with_share(size: SourceSize, share: float) -> SourceSize:
    return SourceSize(size.path, size.unit, size.size, size.per_sequence, share)
