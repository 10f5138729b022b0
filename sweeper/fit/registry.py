"""The law registry: fitting code looks laws up by name, never imports them."""

from __future__ import annotations

from sweeper.errors import SweeperInputError
from sweeper.fit.compression import COMPRESSION
from sweeper.fit.forms import DATA_CONSTRAINED, INTERACTION, KAPLAN, KAPLAN_FLOOR, OFFSET_N
from sweeper.fit.laws import CHINCHILLA, SPARSITY, Law

LAWS: dict[str, Law] = {}


def register_law(law: Law, *, replace: bool = False) -> Law:
    """Add a law; new laws plug in here without touching the optimiser."""
    if law.name in LAWS and not replace:
        raise ValueError(f"law {law.name!r} is already registered; pass replace=True")
    LAWS[law.name] = law
    return law


def get_law(name: str | Law) -> Law:
    if isinstance(name, Law):
        return name
    try:
        return LAWS[name]
    except KeyError:
        raise SweeperInputError("law", name, f"choose one of {sorted(LAWS)}") from None


for _law in (
    CHINCHILLA,
    SPARSITY,
    COMPRESSION,
    INTERACTION,
    DATA_CONSTRAINED,
    OFFSET_N,
    KAPLAN,
    KAPLAN_FLOOR,
):
    register_law(_law)
