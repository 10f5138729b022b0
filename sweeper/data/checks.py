"""What the plan checks in a document source (webdataset pairs, OBELICS rows) before any trial runs:
rows aligned by position, and images that decode. A source that cannot train fails here, naming the file
and row, rather than as a sweep of trials that score nothing."""

from __future__ import annotations

import numpy as np

from sweeper.errors import SweeperInputError

SAMPLE_DOCUMENTS = 512  # documents decoded for the share of bad images, evenly spread over the source


def check_documents(docs, *, bad_images: str, max_bad_share: float, field: str) -> None:
    """Refuse a misaligned row, any corrupt image (bad_images: error), or more than `max_bad_share` of the
    images of an even sample of documents that do not decode (bad_images: skip)."""
    if hasattr(docs, "check_rows"):
        docs.check_rows()
    if bad_images == "error":
        docs.check_images()
        return
    ids = np.unique(np.linspace(0, len(docs) - 1, min(len(docs), SAMPLE_DOCUMENTS)).astype(int))
    seen, bad = 0, []
    for k in ids:
        for segment in docs.segments(int(k)):
            if not isinstance(segment, str):
                seen += 1
                if segment() is None:
                    bad.append(segment.where)
    if seen and len(bad) > max_bad_share * seen:
        share = "every one of the images" if len(bad) == seen else f"{len(bad)} of the {seen} images"
        raise SweeperInputError(
            field,
            bad[0],
            f"{share} checked in {docs.path} do not decode "
            f"(more than data.bad_image_share = {max_bad_share:g}): its trials would train "
            "on blank images and score little or nothing. Fix or remove the broken files "
            "(the first is named), or raise data.bad_image_share",
        )
