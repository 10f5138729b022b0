"""Documents of text and image segments packed into the model's sequences, and their batches.

The caption pairs of webdataset shards (sweeper.data.captions) and the interleaved documents of
OBELICS-style rows (sweeper.data.interleaved) both give documents; this packs them into sequences
of exactly seq_len positions (an image patch takes one position) and collates them into the batch
dicts every source gives (see sweeper.data.batches).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from sweeper.data.shards import IGNORE
from sweeper.errors import SweeperInputError


def decode_image(raw: bytes, image, bad_images: str, where: str) -> np.ndarray | None:
    """Encoded bytes -> [C, H, W] uint8 at the model's square size; None if they do not decode and bad_images
    is "skip". (packed_batch scales a whole batch's pixels to [-0.5, 0.5] at once.)"""
    from PIL import Image

    try:
        with warnings.catch_warnings(), Image.open(io.BytesIO(raw)) as im:
            warnings.simplefilter("ignore")  # Pillow's notes on palettes and EXIF: nothing a user can act on
            im = im.convert("L" if image.channels == 1 else "RGB")
            im = im.resize((image.image_size, image.image_size), Image.Resampling.BICUBIC)
            arr = np.asarray(im)
    except Exception as exc:  # Pillow raises many types for a corrupt file
        if bad_images == "error":
            raise SweeperInputError(
                "data.path",
                where,
                f"the image does not decode ({type(exc).__name__}); "
                "remove it, or set data.bad_images: skip to skip and count such images",
            ) from None
        return None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


@dataclass(frozen=True)
class ImageRef:
    """An image of a document, not yet decoded: `where` names it (file and member or row), calling it decodes
    it (pixels, or None when it does not decode and bad_images is "skip")."""

    where: str
    decode: Callable[[], np.ndarray | None]

    def __call__(self) -> np.ndarray | None:
        return self.decode()


class DocumentPacker:
    """Sequences of [BOS] then documents (text and image segments, EOS after each) up to seq_len positions.

    `docs.segments(k)` gives a document's segments: text, or an image as a callable that decodes it. The
    layout needs no decoding (an image always takes n_patches positions), so a loader worker can pass over
    other workers' sequences cheaply and a corrupt image moves nothing: `decoded` leaves its positions blank
    and unscored, and names it in `skipped` (distinct images, however often visited; a caption pair
    then loses the text of its whole document, an
    interleaved document only that image). A document whose first image no longer fits starts the next
    sequence (the rest is padding). An interleaved document longer than the room left is split: its rest
    (text as token ids, images whole) opens the next sequence, so every token of a long document is
    trained on. A caption pair stays in one sequence; caption text beyond it is cut and counted in
    `cut_tokens`. Only next-token targets that are text are scored.
    """

    def __init__(self, docs, tokenizer, seq_len: int):
        self.docs, self.tok, self.seq_len = docs, tokenizer, seq_len
        self.n_patch = docs.image.n_patches
        self.skipped: set[str] = set()  # the images that did not decode (bad_images: skip)
        self.documents_read = 0  # documents taken from the order (how fast a run goes through the source)
        # an interleaved document longer than the room left goes on in the next sequence; a caption pair is
        # kept whole in one (its caption is scored only with its image), and text beyond it is cut, counted
        self.split_documents = not docs.drop_document_on_bad_image
        self.cut_tokens = 0
        if self.n_patch + 2 > seq_len:
            raise SweeperInputError(
                "data.source",
                docs.source_name,
                f"an image takes {self.n_patch} positions, "
                f"more than a sequence of {seq_len} holds with its text",
            )

    def _next_doc(self, ids: Iterator[int]) -> list:
        while True:
            self.documents_read += 1
            doc = self.docs.segments(next(ids))
            if doc:
                return doc

    def layout(self, ids: Iterator[int], pending: list):
        """One sequence from `pending` documents, then `ids`, with its images undecoded.
        Returns (tokens, segment, text_mask, images, spans): spans[i] bound the positions of image i's
        document."""
        t = self.seq_len
        toks, seg, text, images, spans = [self.tok.bos_id], [0], [True], [], []

        def pad(n: int) -> None:
            toks.extend([self.tok.pad_id] * n), seg.extend([0] * n), text.extend([False] * n)

        while len(toks) < t:
            doc = pending.pop(0) if pending else self._next_doc(ids)
            first_image = not isinstance(doc[0], (str, list))
            if (self.n_patch + 1 if first_image else 1) > t - len(toks):  # starts the next sequence
                pending.insert(0, doc)
                pad(t - len(toks))
                break
            start, first, rest = len(toks), len(images), []
            for j, piece in enumerate(doc):
                room = t - len(toks)
                if isinstance(piece, (str, list)):  # text, or token ids of text carried over
                    ids_ = self.tok.encode(piece) if isinstance(piece, str) else piece
                    toks += ids_[:room]
                    seg += [0] * len(ids_[:room])
                    text += [True] * len(ids_[:room])
                    rest = [ids_[room:]] if len(ids_) > room else []
                elif self.n_patch <= room:
                    images.append(piece)
                    toks += [self.tok.pad_id] * self.n_patch
                    seg += [len(images)] * self.n_patch
                    text += [False] * self.n_patch
                else:
                    pad(room)
                    rest = [piece]
                if len(toks) >= t:
                    rest += doc[j + 1 :]
                    break
            if rest and self.split_documents:  # the document goes on in the next sequence
                pending.insert(0, rest)
            elif rest:
                self.cut_tokens += sum(
                    len(p) if isinstance(p, list) else len(self.tok.encode(p))
                    for p in rest
                    if isinstance(p, (str, list))
                )
            if len(toks) < t:
                toks.append(self.tok.eos_id), seg.append(0), text.append(True)
            spans += [(start, len(toks))] * (len(images) - first)
        return np.asarray(toks), np.asarray(seg), np.asarray(text), images, spans

    def decoded(self, layout):
        """The layout with its images decoded; a corrupt one (bad_images: skip) is blank and unscored."""
        toks, seg, text, images, spans = layout
        pixels = []
        for decode, (start, end) in zip(images, spans):
            pix = decode()
            if pix is None:
                self.skipped.add(decode.where)
                image = self.docs.image
                pix = np.full((image.channels, image.image_size, image.image_size), 128, np.uint8)  # grey
                if self.docs.drop_document_on_bad_image:
                    text[start:end] = False
            pixels.append(pix)
        return toks, seg, text, pixels

    def batch(self, ids: Iterator[int], pending: list, n_sequences: int, target_id: int) -> dict:
        """The next n_sequences, laid out, decoded and packed into one batch."""
        layouts = [self.decoded(self.layout(ids, pending)) for _ in range(n_sequences)]
        return packed_batch(layouts, self.docs.image, target_id)


def packed_batch(layouts, image, target_id: int) -> dict:
    tokens = torch.from_numpy(np.stack([lay[0] for lay in layouts]).astype(np.int64))
    segment = torch.from_numpy(np.stack([lay[1] for lay in layouts]).astype(np.int64))
    text = np.stack([lay[2] for lay in layouts])
    nxt = np.concatenate([text[:, 1:], np.zeros((len(layouts), 1), bool)], axis=1)
    targets = torch.where(
        torch.from_numpy(nxt), torch.roll(tokens, -1, dims=1), torch.full_like(tokens, IGNORE)
    )
    pixels = [p for lay in layouts for p in lay[3]]
    return {
        "tokens": tokens,
        "targets": targets,
        "is_image": segment > 0,
        "segment": segment,
        "target_id": torch.full((len(layouts),), target_id, dtype=torch.int64),
        "patches": _patches(np.stack(pixels), image.patch_size)
        if pixels
        else torch.zeros((0, image.patch_dim), dtype=torch.float32),
    }


def _patches(pixels: np.ndarray, patch: int) -> torch.Tensor:
    """[n, C, H, W] uint8 -> [n * patches per image, C*patch*patch] float in [-0.5, 0.5], each image's patches
    in row-major order (sweeper.data.images.patchify), converted in one pass for the whole batch."""
    n, c, h, w = pixels.shape
    grid = pixels.reshape(n, c, h // patch, patch, w // patch, patch).transpose(0, 2, 4, 1, 3, 5)
    flat = torch.from_numpy(np.ascontiguousarray(grid).reshape(-1, c * patch * patch))
    return (flat * (1.0 / 255.0)).sub_(0.5)  # the multiply converts to float32 in the same pass


class DocumentBatches:
    """Endless batches of packed sequences from a document source (caption pairs, interleaved
    documents) in its
    seeded order. `pass_over(n)` lays out n batches without decoding them (a loader worker passing over the
    others' batches). No `skip`: a resumed run replays the batches before its step
    (sweeper.train.loop.CountedBatches), as how much of a batch is scored depends on its images decoding."""

    def __init__(self, docs, tokenizer, *, target: str, seq_len: int, batch_size: int, seed: int):
        from sweeper.data.documents import TARGETS

        self.packer, self.batch_size = DocumentPacker(docs, tokenizer, seq_len), batch_size
        self.ids, self.pending, self.target_id = docs.indices(seed), [], TARGETS.index(target)

    @property
    def skipped_files(self) -> set[str]:
        return self.packer.skipped

    @property
    def skipped_images(self) -> int:
        return len(self.packer.skipped)

    @property
    def cut_tokens(self) -> int:
        return self.packer.cut_tokens

    def __iter__(self):
        return self

    def pass_over(self, n_batches: int) -> None:
        for _ in range(n_batches * self.batch_size):
            self.packer.layout(self.ids, self.pending)

    def __next__(self) -> dict:
        return self.packer.batch(self.ids, self.pending, self.batch_size, self.target_id)
