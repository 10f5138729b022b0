"""Image-caption pairs from webdataset tar shards (the img2dataset layout).

A sample is the tar members sharing a key: an image (`.jpg`/`.jpeg`/`.png`/`.webp`) and a
caption (`.txt`, or `.json` with a "caption" or "text" field). Opening the shards reads only
their tar headers, into an index of (shard, member offsets) per sample, so sample k is read
directly: each epoch visits every pair once in an order drawn from (seed, epoch), exactly as
token shards do (webdataset's streaming readers shuffle only within a buffer). The last
`holdout` pairs of the index are validation data no training order visits.

Images are decoded with Pillow, resized to the model's square geometry and packed with their
captions by sweeper.data.packing, which lays sequences out from the captions alone and decodes only
the images of the batches it builds. A pair whose image does not decode keeps its positions, blank
and unscored, and is counted (`bad_images: skip`), or stops the run naming the tar and member
(`bad_images: error`; the plan checks every image first).
"""

from __future__ import annotations

import functools
import io
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sweeper.data.files import find_files
from sweeper.data.packing import ImageRef, decode_image
from sweeper.data.shards import epoch_order
from sweeper.errors import SweeperInputError

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
CAPTION_EXTS = ("txt", "json")


@dataclass(frozen=True)
class Pair:
    shard: int
    key: str
    image: tuple[int, int, str]  # offset, size, member name
    caption: tuple[int, int, str]


def list_tars(path: str, field: str) -> list[str]:
    return find_files(
        path,
        suffixes=(".tar",),
        field=field,
        what="webdataset .tar shards",
        how="write image-caption pairs as img2dataset does: 00000.tar, 00001.tar, ...",
    )


def _read_bytes(url: str) -> bytes:
    import fsspec

    with fsspec.open(url, "rb") as f:
        return f.read()


def index_tar(url: str, shard: int, field: str, data: bytes | None = None) -> list[Pair]:
    """The pairs of one tar (local, or its bytes `data`), in member order, from its headers only."""
    try:
        with tarfile.open(
            fileobj=io.BytesIO(data) if data is not None else None,
            name=url if data is None else None,
            mode="r:",
        ) as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
    except (tarfile.TarError, OSError) as exc:
        raise SweeperInputError(field, url, f"not a readable tar ({exc}); write it again") from None
    by_key: dict[str, dict[str, tarfile.TarInfo]] = {}
    for m in members:
        base = m.name.rsplit("/", 1)[-1]
        if "." not in base:
            continue
        key, ext = m.name[: len(m.name) - len(base)] + base.split(".", 1)[0], base.split(".", 1)[1].lower()
        by_key.setdefault(key, {})[ext] = m
    pairs = []
    for key, parts in by_key.items():
        img = next((parts[e] for e in IMAGE_EXTS if e in parts), None)
        cap = next((parts[e] for e in CAPTION_EXTS if e in parts), None)
        if img is not None and cap is not None:
            pairs.append(
                Pair(shard, key, (img.offset_data, img.size, img.name), (cap.offset_data, cap.size, cap.name))
            )
    return pairs


class CaptionShards:
    """Every image-caption pair of the shards at `path`, readable by index."""

    source_name, drop_document_on_bad_image = "webdataset", True

    def __init__(
        self, path: str, *, image, field: str = "data.path", holdout: int = 0, bad_images: str = "skip"
    ):
        self.path, self.image, self.field, self.bad_images = path, image, field, bad_images
        self.urls = list_tars(path, field)
        # a remote shard is read once into memory, as remote token shards are
        self._remote = {i: _read_bytes(u) for i, u in enumerate(self.urls) if "://" in u}
        self._fds: dict[int, int] = {}  # local shards, read with pread: safe in forked loader workers
        self.pairs = [
            p for i, url in enumerate(self.urls) for p in index_tar(url, i, field, self._remote.get(i))
        ]
        if not self.pairs:
            raise SweeperInputError(
                field,
                path,
                "no image-caption pairs in the shards: each sample needs an "
                f"image ({', '.join('.' + e for e in IMAGE_EXTS)}) and a .txt or .json "
                "caption with the same key",
            )
        self.n_held_out = int(holdout)
        self.n_train = len(self.pairs) - self.n_held_out
        if self.n_train < 1:
            raise SweeperInputError(
                field,
                path,
                f"{len(self.pairs)} pairs and {self.n_held_out} held out for "
                "validation: nothing left to train on; write more pairs or lower "
                "data.val_sequences",
            )

    def __len__(self) -> int:
        return len(self.pairs)

    def _member(self, shard: int, offset: int, size: int) -> bytes:
        if shard in self._remote:
            return self._remote[shard][offset : offset + size]
        if shard not in self._fds:
            self._fds[shard] = os.open(self.urls[shard], os.O_RDONLY)
        return os.pread(self._fds[shard], size, offset)

    def caption(self, k: int) -> str:
        pair = self.pairs[k]
        raw = self._member(pair.shard, *pair.caption[:2]).decode("utf-8", errors="replace")
        if pair.caption[2].lower().endswith(".json"):
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError:
                return ""
            raw = str(obj.get("caption") or obj.get("text") or "") if isinstance(obj, dict) else ""
        return raw.strip()

    def pixels(self, k: int) -> np.ndarray | None:
        """[C, H, W] in [-0.5, 0.5] at the model's size; None for an image that does not decode (skip)."""
        pair = self.pairs[k]
        return decode_image(
            self._member(pair.shard, *pair.image[:2]), self.image, self.bad_images, self.where(k)
        )

    def where(self, k: int) -> str:
        """Pair k's image as a message names it: the tar and its member."""
        pair = self.pairs[k]
        return f"{self.urls[pair.shard]}:{pair.image[2]}"

    def segments(self, k: int) -> list:
        """[image, caption]: the pair as a document, its image a callable that decodes it (pixels or None)."""
        return [ImageRef(self.where(k), functools.partial(self.pixels, k)), self.caption(k)]

    def document(self, k: int) -> list:
        """[pixels or None, caption]: the pair, decoded."""
        return [self.pixels(k), self.caption(k)]

    def check_images(self) -> None:
        """Decode every image once (bad_images: error): a corrupt file fails the plan, not a trial."""
        for k in range(len(self.pairs)):
            self.pixels(k)

    def indices(self, seed: int, start: int = 0) -> Iterator[int]:
        return epoch_order(self.n_train, seed, start, salt=11)
