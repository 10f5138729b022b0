"""Data mixtures (caption, interleaved, text) and the order targets are drawn in."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from sweeper.data.documents import TARGETS
from sweeper.errors import SweeperInputError

# Paper §3.2: Image-Caption / Interleaved / Text. 45-45-10 is the default (Table 5).
MIXTURES: dict[str, tuple[float, float, float]] = {
    "45-45-10": (0.45, 0.45, 0.10),
    "40-20-40": (0.40, 0.20, 0.40),
    "30-30-40": (0.30, 0.30, 0.40),
    "20-40-40": (0.20, 0.40, 0.40),
}
DEFAULT_MIXTURE = MIXTURES["45-45-10"]


def as_mixture(mixture: str | Sequence[float] | Mapping[str, float] | None) -> tuple[float, float, float]:
    """Normalised (caption, interleaved, text) weights from a name, a triple or a dict."""
    if mixture is None:
        return DEFAULT_MIXTURE
    if isinstance(mixture, str):
        if mixture not in MIXTURES:
            raise SweeperInputError("mixture", mixture, f"use one of {sorted(MIXTURES)} or three weights")
        return MIXTURES[mixture]
    if isinstance(mixture, Mapping):
        unknown = set(mixture) - set(TARGETS)
        if unknown:
            raise SweeperInputError("mixture", dict(mixture), f"keys must be among {TARGETS}")
        weights = [float(mixture.get(t, 0.0)) for t in TARGETS]
    else:
        weights = [float(w) for w in mixture]
    if len(weights) != 3 or min(weights) < 0 or sum(weights) <= 0:
        raise SweeperInputError(
            "mixture", mixture, "give three non-negative weights (caption, interleaved, text)"
        )
    total = sum(weights)
    return tuple(w / total for w in weights)  # type: ignore[return-value]


def target_schedule(weights: Sequence[float]) -> Iterator[int]:
    """Target index for each successive sequence (smooth weighted round robin).

    Deterministic and stratified: after n sequences each target's count is
    within one of n * weight, so proportions hold at any batch size, which
    random sampling would only give on average.
    """
    credit = [0.0] * len(weights)
    while True:
        credit = [c + w for c, w in zip(credit, weights)]
        k = max(range(len(weights)), key=lambda i: credit[i])
        credit[k] -= 1.0
        yield k
