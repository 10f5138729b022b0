"""Injected faults, for reliability tests and `benchmarks/faults.py` only.

Whether a trial is hit depends only on (seed, point), and only its first
attempt is hit: a marker file records the attempt, so Tune's retry of the same
point recovers. Off unless `faults.rate` > 0.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path


class InjectedFault(RuntimeError):
    """Raised on purpose by fault injection."""


def fault_for(faults: dict, point_id: str) -> str | None:
    """The fault kind this point gets on its first attempt, or None."""
    if not faults or faults.get("rate", 0.0) <= 0:
        return None
    digest = hashlib.sha256(f"{faults.get('seed', 0)}:{point_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "little") / 2**64
    if u >= faults["rate"]:
        return None
    kinds = list(faults.get("kinds", ("raise",)))
    return kinds[int.from_bytes(digest[8:12], "little") % len(kinds)]


def first_attempt(faults: dict, point_id: str) -> bool:
    """True exactly once per point and marker directory (the attempt is recorded)."""
    marker = Path(faults["marker_dir"]) / hashlib.sha256(point_id.encode()).hexdigest()[:16]
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


def inject(faults: dict, point_id: str) -> str | None:
    """Raise or kill for this point if it is due; returns 'nan' for the caller to diverge."""
    kind = fault_for(faults, point_id)
    if kind is None or not first_attempt(faults, point_id):
        return None
    if kind == "raise":
        raise InjectedFault(f"injected fault in {point_id}")
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    return kind
