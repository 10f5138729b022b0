"""Interleaved image-text documents, OBELICS-style: each row holds a list of texts and a list of images,
aligned by position (at each position one of them is set), images as encoded bytes.

Rows are read with Hugging Face `datasets` (parquet, jsonl or arrow files), memory-mapped from its Arrow
cache, so document k is read directly: each epoch visits every training document once in an order drawn
from (seed, epoch), and the last `holdout` documents are validation data no training order visits.
Images are decoded with Pillow and resized to the model's geometry (sweeper.data.packing.decode_image);
one that does not decode is left blank in its document and counted, or (`bad_images: error`) named. A row
whose lists are not aligned by position is refused, naming it (the plan checks every row first).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator

from sweeper.data.packing import ImageRef, decode_image
from sweeper.data.shards import epoch_order
from sweeper.data.text_corpus import builder_for, corpus_files
from sweeper.errors import SweeperInputError

TEXTS, IMAGES = "texts", "images"


ALIGNED = (
    f"OBELICS rows hold '{TEXTS}' and '{IMAGES}' lists of one length, with at each position either a "
    "text or an image (the other null); write the row that way"
)


def misalignment(texts: list, images: list) -> str | None:
    """Why a row's lists are not aligned by position (a text and an image at one position, or lists of
    different lengths, unless one is empty: a document of text or images only), or None."""
    if texts and images and len(texts) != len(images):
        return f"'{TEXTS}' has {len(texts)} entries and '{IMAGES}' {len(images)}"
    both = next((i for i, (t, m) in enumerate(zip(texts, images)) if t and m), None)
    return None if both is None else f"position {both} holds both a text and an image"


class InterleavedDocs:
    """Every document of the files at `path`, readable by index (the packers' document interface)."""

    source_name, drop_document_on_bad_image = "interleaved", False

    def __init__(
        self,
        path: str,
        *,
        image,
        field: str = "data.path",
        holdout: int = 0,
        bad_images: str = "skip",
        dataset: str | None = None,
        cache_dir: str | None = None,
    ):
        import datasets

        datasets.disable_progress_bars()
        self.path, self.image, self.field, self.bad_images = path, image, field, bad_images
        files = corpus_files(path, field)
        self.rows = datasets.load_dataset(
            builder_for(files, dataset, field), data_files=files, split="train", cache_dir=cache_dir
        )
        missing = [c for c in (TEXTS, IMAGES) if c not in self.rows.column_names]
        if missing:
            raise SweeperInputError(
                field,
                path,
                f"no '{missing[0]}' column; interleaved documents need "
                f"'{TEXTS}' (a list of texts) and '{IMAGES}' (a list of image bytes), "
                f"aligned by position; the columns are {sorted(self.rows.column_names)}",
            )
        self.n_held_out = int(holdout)
        self.n_train = len(self.rows) - self.n_held_out
        if self.n_train < 1:
            raise SweeperInputError(
                field,
                path,
                f"{len(self.rows)} documents and {self.n_held_out} held out for "
                "validation: nothing left to train on; write more or lower val_sequences",
            )

    def __len__(self) -> int:
        return len(self.rows)

    def document(self, k: int) -> list:
        """Segments in order: text (str) or pixels [C, H, W]; None for an image that does not decode."""
        return [seg if isinstance(seg, str) else seg() for seg in self.segments(k)]

    def segments(self, k: int) -> list:
        """Segments in order: text (str) or an image as an ImageRef that decodes it (pixels or None)."""
        row = self.rows[int(k)]
        texts, images = row[TEXTS] or [], row[IMAGES] or []
        images = [img.get("bytes") if isinstance(img, dict) else img for img in images]  # datasets' Image
        problem = misalignment(texts, images)
        if problem:
            raise SweeperInputError(self.field, f"{self.path}:row {k}", f"{problem}; {ALIGNED}")
        out: list = []
        for i, (text, img) in enumerate(itertools.zip_longest(texts, images)):  # one list may be empty
            if img:
                where = f"{self.path}:row {k}, image {i}"
                out.append(
                    ImageRef(where, functools.partial(decode_image, img, self.image, self.bad_images, where))
                )
            elif text:
                out.append(text)
        return out

    def check_rows(self) -> None:
        """Every row's `texts` and `images` aligned by position (read from Arrow, no image decoded): a
        misaligned row would lose its text or images in training, so the plan refuses it, naming the row."""
        import pyarrow.compute as pc

        table = self.rows.data
        n_texts = pc.list_value_length(table.column(TEXTS)).to_pylist()
        n_images = pc.list_value_length(table.column(IMAGES)).to_pylist()
        text_set = pc.is_valid(pc.list_flatten(table.column(TEXTS))).to_pylist()
        image_set = pc.is_valid(pc.list_flatten(table.column(IMAGES))).to_pylist()
        t0 = i0 = 0
        for k, (nt, ni) in enumerate(zip(n_texts, n_images)):
            nt, ni = nt or 0, ni or 0
            problem = misalignment(text_set[t0 : t0 + nt], image_set[i0 : i0 + ni])
            if problem:
                raise SweeperInputError(self.field, f"{self.path}:row {k}", f"{problem}; {ALIGNED}")
            t0, i0 = t0 + nt, i0 + ni

    def check_images(self) -> None:
        for k in range(len(self.rows)):
            self.document(k)

    def indices(self, seed: int, start: int = 0) -> Iterator[int]:
        return epoch_order(self.n_train, seed, start, salt=13)
