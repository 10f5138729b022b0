"""Image-caption pairs from webdataset tar shards (the img2dataset layout).

A sample is the tar members sharing a key: an image (`.jpg`/`.jpeg`/`.png`/`.webp`) and a
caption (`.txt`, or `.json` with a "caption" or "text" field). Opening the shards reads only
their tar headers, into an index of (shard, member offsets) per sample, so sample k is read
directly: each epoch visits every pair once in an order drawn from (seed, epoch), exactly as
token shards do (webdataset's streaming readers shuffle only within a buffer). The last
`holdout` pairs of the index are validation data no training order visits.

Images are decoded with Pillow, resized to the model's square geometry and cut into patches.
A pair whose image does not decode is skipped and counted (`bad_images: skip`) or stops the run
naming the tar and member (`bad_images: error`; the plan checks every image first).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from sweeper.data.files import find_files
from sweeper.data.shards import IGNORE
from sweeper.errors import SweeperInputError

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
CAPTION_EXTS = ("txt", "json")


def decode_image(raw: bytes, image, bad_images: str, where: str) -> np.ndarray | None:
    """Encoded bytes -> [C, H, W] in [-0.5, 0.5] at the model's square size; None if they do not decode and
    bad_images is "skip"."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw)) as im:
            im = im.convert("L" if image.channels == 1 else "RGB")
            im = im.resize((image.image_size, image.image_size), Image.Resampling.BICUBIC)
            arr = np.asarray(im, dtype=np.float32) / 255.0 - 0.5
    except Exception as exc:  # Pillow raises many types for a corrupt file
        if bad_images == "error":
            raise SweeperInputError("data.path", where, f"the image does not decode ({type(exc).__name__}); remove "
                                    "it, or set data.bad_images: skip to skip and count such images") from None
        return None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


@dataclass(frozen=True)
class Pair:
    shard: int
    key: str
    image: tuple[int, int, str]  # offset, size, member name
    caption: tuple[int, int, str]


def list_tars(path: str, field: str) -> list[str]:
    return find_files(path, suffixes=(".tar",), field=field, what="webdataset .tar shards",
                      how="write image-caption pairs as img2dataset does: 00000.tar, 00001.tar, ...")


def _read_bytes(url: str) -> bytes:
    import fsspec

    with fsspec.open(url, "rb") as f:
        return f.read()


def index_tar(url: str, shard: int, field: str) -> list[Pair]:
    """The pairs of one tar, in member order, from its headers only."""
    try:
        with tarfile.open(fileobj=io.BytesIO(_read_bytes(url)) if "://" in url else None,
                          name=None if "://" in url else url, mode="r:") as tar:
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
            pairs.append(Pair(shard, key, (img.offset_data, img.size, img.name), (cap.offset_data, cap.size, cap.name)))
    return pairs


class CaptionShards:
    """Every image-caption pair of the shards at `path`, readable by index."""

    source_name, drop_document_on_bad_image = "webdataset", True

    def __len__(self) -> int:
        return len(self.pairs)

    def __init__(self, path: str, *, image, field: str = "data.path", holdout: int = 0, bad_images: str = "skip"):
        self.path, self.image, self.field, self.bad_images = path, image, field, bad_images
        self.urls = list_tars(path, field)
        self.pairs = [p for i, url in enumerate(self.urls) for p in index_tar(url, i, field)]
        if not self.pairs:
            raise SweeperInputError(field, path, "no image-caption pairs in the shards: each sample needs an image "
                                    f"({', '.join('.' + e for e in IMAGE_EXTS)}) and a .txt or .json caption "
                                    "with the same key")
        self.n_held_out = int(holdout)
        self.n_train = len(self.pairs) - self.n_held_out
        if self.n_train < 1:
            raise SweeperInputError(field, path, f"{len(self.pairs)} pairs and {self.n_held_out} held out for "
                                    "validation: nothing left to train on; write more pairs or lower "
                                    "data.val_sequences")
        self._remote = {i: _read_bytes(u) for i, u in enumerate(self.urls) if "://" in u}

    def _member(self, shard: int, offset: int, size: int) -> bytes:
        if shard in self._remote:
            return self._remote[shard][offset:offset + size]
        with open(self.urls[shard], "rb") as f:
            f.seek(offset)
            return f.read(size)

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
        return decode_image(self._member(pair.shard, *pair.image[:2]), self.image, self.bad_images,
                            f"{self.urls[pair.shard]}:{pair.image[2]}")

    def document(self, k: int) -> list:
        """[pixels or None, caption]: the pair as a document."""
        return [self.pixels(k), self.caption(k)]

    def check_images(self) -> None:
        """Decode every image once (bad_images: error): a corrupt file fails the plan, not a trial."""
        for k in range(len(self.pairs)):
            self.pixels(k)

    def order(self, seed: int, epoch: int) -> np.ndarray:
        return np.random.default_rng([seed, epoch, 11]).permutation(self.n_train)

    def indices(self, seed: int, start: int = 0) -> Iterator[int]:
        epoch, i = divmod(int(start), self.n_train)
        while True:
            for k in self.order(seed, epoch)[i:]:
                yield int(k)
            epoch, i = epoch + 1, 0


class DocumentPacker:
    """Sequences of [BOS] then documents (text and image segments, EOS after each) up to seq_len positions.

    `docs.document(k)` gives a document's segments: text, pixels, or None for an image that did not decode
    (counted in `skipped`; a caption pair loses its whole document, an interleaved one only that image).
    A document whose first image no longer fits starts the next sequence (the rest is padding); text longer
    than the room left is cut, and an image that does not fit mid-document ends it. Only next-token targets
    that are text are scored.
    """

    def __init__(self, docs, tokenizer, seq_len: int):
        self.docs, self.tok, self.seq_len = docs, tokenizer, seq_len
        self.n_patch = docs.image.n_patches
        self.skipped = 0  # images that did not decode (bad_images: skip)
        if self.n_patch + 2 > seq_len:
            raise SweeperInputError("data.source", docs.source_name, f"an image takes {self.n_patch} positions, "
                                    f"more than a sequence of {seq_len} holds with its text")

    def _next_doc(self, ids: Iterator[int]) -> list:
        while True:
            doc = self.docs.document(next(ids))
            bad = sum(seg is None for seg in doc)
            self.skipped += bad
            if bad and self.docs.drop_document_on_bad_image:
                continue
            doc = [seg for seg in doc if seg is not None]
            if doc:
                return doc

    def layout(self, ids: Iterator[int], pending: list):
        """One sequence from `pending` documents, then `ids`. Returns (tokens, segment, text_mask, images)."""
        t = self.seq_len
        toks, seg, text, images = [self.tok.bos_id], [0], [True], []

        def pad(n: int) -> None:
            toks.extend([self.tok.pad_id] * n), seg.extend([0] * n), text.extend([False] * n)

        while len(toks) < t:
            doc = pending.pop(0) if pending else self._next_doc(ids)
            first_image = not isinstance(doc[0], str)
            if (self.n_patch + 1 if first_image else 1) > t - len(toks):  # starts the next sequence
                pending.insert(0, doc)
                pad(t - len(toks))
                break
            for piece in doc:
                room = t - len(toks)
                if isinstance(piece, str):
                    ids_ = self.tok.encode(piece)[:room]
                    toks += ids_
                    seg += [0] * len(ids_)
                    text += [True] * len(ids_)
                elif self.n_patch <= room:
                    images.append(piece)
                    toks += [self.tok.pad_id] * self.n_patch
                    seg += [len(images)] * self.n_patch
                    text += [False] * self.n_patch
                else:
                    pad(room)
                if len(toks) >= t:
                    break
            if len(toks) < t:
                toks.append(self.tok.eos_id), seg.append(0), text.append(True)
        return np.asarray(toks), np.asarray(seg), np.asarray(text), images


def packed_batch(layouts, image, target_id: int) -> dict:
    tokens = torch.from_numpy(np.stack([lay[0] for lay in layouts]).astype(np.int64))
    segment = torch.from_numpy(np.stack([lay[1] for lay in layouts]).astype(np.int64))
    text = np.stack([lay[2] for lay in layouts])
    nxt = np.concatenate([text[:, 1:], np.zeros((len(layouts), 1), bool)], axis=1)
    targets = torch.where(torch.from_numpy(nxt), torch.roll(tokens, -1, dims=1), torch.full_like(tokens, IGNORE))
    patches = [_patchify(p, image.patch_size) for lay in layouts for p in lay[3]]
    return {"tokens": tokens, "targets": targets, "is_image": segment > 0, "segment": segment,
            "target_id": torch.full((len(layouts),), target_id, dtype=torch.int64),
            "patches": torch.from_numpy(np.concatenate(patches) if patches else
                                        np.zeros((0, image.patch_dim), np.float32))}


def _patchify(pix: np.ndarray, patch: int) -> np.ndarray:
    from sweeper.data.images import patchify

    return patchify(pix, patch).astype(np.float32)


class DocumentBatches:
    """Endless batches of packed sequences from a document source (caption pairs, interleaved documents) in its
    seeded order. No `skip`: a resumed run replays the batches before its step (sweeper.train.loop.CountedBatches),
    as a skipped corrupt image moves every later document and only decoding finds it."""

    def __init__(self, docs, tokenizer, *, target: str, seq_len: int, batch_size: int, seed: int):
        from sweeper.data.documents import TARGETS

        self.packer, self.batch_size = DocumentPacker(docs, tokenizer, seq_len), batch_size
        self.ids, self.pending, self.target_id = docs.indices(seed), [], TARGETS.index(target)

    @property
    def skipped_images(self) -> int:
        return self.packer.skipped

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        layouts = [self.packer.layout(self.ids, self.pending) for _ in range(self.batch_size)]
        return packed_batch(layouts, self.packer.docs.image, self.target_id)
