"""Injected faults and delays, for reliability tests and `benchmarks/faults.py` only.

They are not part of a search space (a user never sees them in the schema or the CLI):
tests pass a `Harness` to `Sweeper(..., harness=...)`. Whether a trial is hit depends only
on (seed, point), and only its first attempt is hit: a marker file records the attempt, so
Tune's retry of the same point recovers.
"""

from __future__ import annotations

import hashlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path


class InjectedFault(RuntimeError):
    """Raised on purpose by fault injection."""


@dataclass(frozen=True, kw_only=True)
class Harness:
    """What a test injects into a sweep: a trial is hit with probability `fault_rate` on its first attempt
    (`raise` raises, `kill` SIGKILLs its worker process, `nan` makes it diverge), and each simulated trial
    sleeps `delay_s` (a test that interrupts a sweep mid-flight)."""

    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = ("raise",)
    fault_seed: int = 0
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.fault_rate <= 1:
            raise ValueError(f"fault_rate {self.fault_rate} is not a probability")
        unknown = set(self.fault_kinds) - {"raise", "kill", "nan"}
        if unknown:
            raise ValueError(f"fault kinds {sorted(unknown)}: allowed are raise, kill, nan")

    @property
    def active(self) -> bool:
        return self.fault_rate > 0 or self.delay_s > 0

    def faults(self) -> dict:
        """What trials receive (sweeper.trial.spec); `marker_dir` is added per sweep."""
        return {"rate": self.fault_rate, "kinds": list(self.fault_kinds), "seed": self.fault_seed}


NO_HARNESS = Harness()


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
