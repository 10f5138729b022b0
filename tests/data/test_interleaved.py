"""Interleaved image-text documents, OBELICS-style parquet rows (`texts` and `images` lists aligned by
position, images as PNG bytes), read with Hugging Face datasets: documents in order, a corrupt image
dropped and counted, training that learns and resumes exactly, and a missing column named."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from training_runs import train_and_resume

from models.config import ImageConfig
from models.registry import get_model_spec
from sweeper.data.documents import interleaved_doc
from sweeper.data.images import render
from sweeper.data.interleaved import InterleavedDocs
from sweeper.data.sources import held_out_sets, training_stream
from sweeper.errors import SweeperInputError

SPEC = get_model_spec("early_fusion", "tiny-2")
DRAW = ImageConfig(image_size=32, patch_size=8)


def png(scene, rng) -> bytes:
    pix = ((render(scene, DRAW, rng) + 0.5).clip(0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
    out = io.BytesIO()
    Image.fromarray(pix).save(out, format="PNG")
    return out.getvalue()


def write_documents(path: Path, n_docs: int = 150, seed: int = 0, corrupt: int | None = None) -> Path:
    """OBELICS's layout: per row, `texts` and `images` of equal length; at each position one is null."""
    rng = np.random.default_rng(seed)
    texts, images = [], []
    for d in range(n_docs):
        row_t, row_i = [], []
        for seg in interleaved_doc(rng):
            is_text = isinstance(seg, str)
            row_t.append(seg if is_text else None)
            row_i.append(None if is_text else (b"\x89PNG broken" if d == corrupt else png(seg, rng)))
        texts.append(row_t)
        images.append(row_i)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "texts": pa.array(texts, pa.list_(pa.string())),
            "images": pa.array(images, pa.list_(pa.binary())),
            "url": [f"doc{i}" for i in range(n_docs)],
        }
    )
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def docs_file(tmp_path_factory) -> Path:
    return write_documents(tmp_path_factory.mktemp("obelics") / "docs" / "part-0.parquet")


def data_section(path, **extra) -> dict:
    return {
        "source": "obelics",
        "path": str(path),
        "val_path": None,
        "val_sequences": 10,
        "bad_images": "skip",
        "tokenizer": None,
        **extra,
    }


def test_documents_keep_their_order_of_text_and_images(docs_file):
    docs = InterleavedDocs(str(docs_file), image=SPEC.config.image, holdout=10)
    assert len(docs) == 150 and docs.n_train == 140
    rng = np.random.default_rng(0)
    first = interleaved_doc(rng)  # the generator's first document, as written
    got = docs.document(0)
    assert [isinstance(s, str) for s in got] == [isinstance(s, str) for s in first]
    assert [s for s in got if isinstance(s, str)] == [s for s in first if isinstance(s, str)]
    assert all(s.shape == (3, 24, 24) for s in got if not isinstance(s, str))  # resized to the model's size
    order = docs.indices(seed=1)
    epoch = [next(order) for _ in range(140)]
    assert sorted(epoch) == list(range(140))


def test_a_run_on_documents_learns_and_resumes_with_the_same_losses(docs_file):
    data = data_section(docs_file)
    reports, whole, resumed = train_and_resume(SPEC, data, (0, 1, 0))
    assert reports[-1]["val_loss"] < reports[0]["val_loss"] - 0.5, reports
    assert whole.n_image_tokens > 0 and set(whole.losses) == {"interleaved", "avg"}
    assert resumed.losses == whole.losses and resumed.flops == whole.flops
    batch = next(training_stream(SPEC, (0, 1, 0), 8, 0, data))  # a document opens with text: take a few
    assert batch["patches"].shape[0] == int(batch["is_image"].sum()) > 0
    assert list(held_out_sets(SPEC, n_batches=1, batch_size=2, seed=0, data=data)) == ["interleaved"]


def test_a_corrupt_image_is_dropped_and_counted_or_named(tmp_path):
    path = write_documents(tmp_path / "bad" / "part-0.parquet", n_docs=12, corrupt=0)
    docs = InterleavedDocs(str(path), image=SPEC.config.image, holdout=1)
    assert None in docs.document(0) and any(isinstance(s, str) for s in docs.document(0))
    stream = training_stream(SPEC, (0, 1, 0), 4, 0, data_section(path, val_sequences=1))
    for _ in range(40):  # an epoch of the 11 training documents
        next(stream)
    assert stream.skipped_images >= 1
    strict = InterleavedDocs(str(path), image=SPEC.config.image, bad_images="error")
    with pytest.raises(SweeperInputError, match="the image does not decode") as err:
        strict.check_images()
    assert err.value.value.startswith(f"{path}:row 0, image ")


def test_a_table_without_the_columns_is_named(tmp_path):
    path = tmp_path / "plain" / "t.parquet"
    path.parent.mkdir()
    pq.write_table(pa.table({"text": ["only text"]}), path)
    with pytest.raises(SweeperInputError, match=r"no 'texts' column; .* the columns are \['text'\]"):
        InterleavedDocs(str(path), image=SPEC.config.image)


def test_rows_whose_texts_and_images_are_not_aligned_are_refused_naming_the_row(tmp_path, docs_file, capsys):
    import yaml

    from sweeper.cli import main

    table = pq.read_table(docs_file).slice(0, 20).to_pydict()
    k = next(k for k, imgs in enumerate(table["images"]) if any(imgs))
    i = next(i for i, img in enumerate(table["images"][k]) if img)
    table["texts"][k][i] = "a caption written over the picture's slot."  # both set at one position
    path = tmp_path / "docs" / "part-0.parquet"
    path.parent.mkdir()
    pq.write_table(
        pa.table(
            {
                "texts": pa.array(table["texts"], pa.list_(pa.string())),
                "images": pa.array(table["images"], pa.list_(pa.binary())),
            }
        ),
        path,
    )
    docs = InterleavedDocs(str(path), image=SPEC.config.image, holdout=2)
    with pytest.raises(SweeperInputError, match=f"position {i} holds both a text and an image") as err:
        docs.check_rows()
    assert err.value.value == f"{path}:row {k}"
    with pytest.raises(SweeperInputError, match="aligned|both a text"):
        docs.segments(k)  # training never drops the text silently either
    assert docs.segments(k + 1 if k + 1 < 20 else 0)  # the other rows still read

    space = {
        "model": {"kind": "early_fusion", "ladder": "tiny"},
        "budget": 1e12,
        "training": {"mixture": [0, 1, 0]},
        "data": data_section(path, val_sequences=2),
    }
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(["plan", str(tmp_path / "space.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"row {k}" in err and "either a text or an image" in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written

    short = pa.table(
        {
            "texts": pa.array([["one", None, "two"]], pa.list_(pa.string())),
            "images": pa.array([[None, table["images"][k][i]]], pa.list_(pa.binary())),
        }
    )
    pq.write_table(short, path)
    with pytest.raises(SweeperInputError, match="'texts' has 3 entries and 'images' 2"):
        InterleavedDocs(str(path), image=SPEC.config.image).check_rows()
