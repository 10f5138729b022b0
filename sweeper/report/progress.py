"""Progress of `sweeper run`: finished trials as lines, and on a terminal a live status line.

On a terminal the status line (trials, compute spent against budget as a bar,
the watched CI half-widths against the target, an ETA) redraws in place below
the scrolling trial lines;
elsewhere (CI logs, files, `ray job` logs) the same information comes as plain
lines, one per finished trial.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TextIO

import numpy as np

from sweeper.report.formatting import human


class ConsoleProgress:
    """A line printer with an optional status line that redraws in place on a TTY."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._status = ""

    def __call__(self, line: str) -> None:
        if self.tty and self._status:
            self.stream.write("\r\033[K")  # clear the status line; it is redrawn below the new line
        self.stream.write(line + "\n")
        if self.tty and self._status:
            self.stream.write(self._status)
        self.stream.flush()

    def status(self, text: str) -> None:
        if not self.tty:
            return  # plain output: the trial lines already carry the same numbers
        self._status = text
        self.stream.write("\r\033[K" + text)
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._status:
            self.stream.write("\n")
            self.stream.flush()
            self._status = ""


def duration_text(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def eta_seconds(
    elapsed: float, *, done: int, total: int, spent: float, budget: float, converge_at: float = math.nan
) -> float:
    """Time left at the pace so far: trials left of a planned grid; else compute left until the watched
    CIs reach the target (`converge_at`, FLOPs in all) or the budget, whichever comes first."""
    if total:
        return elapsed / done * (total - done) if done else math.nan
    end = min(budget, converge_at) if math.isfinite(converge_at) else budget
    if spent > 0 and math.isfinite(end):
        return elapsed / spent * max(end - spent, 0.0)
    return math.nan


def converge_compute(refits, target_ci: float | None, *, recent: int = 6) -> float:
    """FLOPs (in all) at which every watched CI half-width reaches target_ci, from the power of compute
    fitted to the last refits' half-widths (slope -1/2, independent runs, where that fit is not clearly
    negative); nan while there are too few refits to say."""
    if not target_ci or len(refits) < 3:
        return math.nan
    last = refits[-recent:]
    spent = np.array([r.flops_spent for r in last], float)
    needed = spent[-1]
    for name in last[-1].halfwidths:
        width = np.array([r.halfwidths.get(name, math.nan) for r in last], float)
        keep = np.isfinite(width) & (width > 0) & (spent > 0)
        if keep.sum() < 3 or not keep[-1]:
            return math.nan
        if width[-1] <= target_ci:
            continue
        slope = np.polyfit(np.log(spent[keep]), np.log(width[keep]), 1)[0]
        slope = slope if slope < -0.1 else -0.5
        needed = max(needed, spent[-1] * (width[-1] / target_ci) ** (-1.0 / slope))
    return float(needed)


def status_text(
    *,
    done: int,
    total: int,
    spent: float,
    budget: float,
    halfwidths: dict,
    target_ci: float | None,
    eta: float,
) -> str:
    """The live status line: trials, compute against budget (a bar), watched CIs against the target, ETA."""
    share = spent / budget if budget > 0 and math.isfinite(budget) else math.nan
    filled = int(round(10 * min(share, 1.0))) if math.isfinite(share) else 0
    bar = "#" * filled + "." * (10 - filled)
    count = f"{done}/{total}" if total else f"{done}"
    text = f"[{bar}] {count} trials | {human(spent, 2)}/{human(budget, 2)} FLOPs"
    if halfwidths:
        widths = " ".join(f"{k} ±{v:.3f}" if math.isfinite(v) else f"{k} ±?" for k, v in halfwidths.items())
        text += f" | CI {widths}" + (f" (target ±{target_ci:g})" if target_ci else "")
    return text + f" | ETA {duration_text(eta)}"


class ProgressPrinter:
    """Per finished trial: one line (count, loss, compute, watched CIs, from the ledger); on a terminal
    also the status line (compute bar, watched CIs against the target, ETA)."""

    def __init__(
        self,
        total: int,
        budget: float,
        emit: Callable[[str], None],
        *,
        target_ci: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total, self.budget, self.emit, self.done = total, budget, emit, 0
        self.target_ci, self.clock, self.started = target_ci, clock, clock()

    def trial_finished(self, point_id: str, loss, status: str, ledger) -> None:
        self.done += 1
        shown = f"loss={loss:.4f}" if isinstance(loss, float) else "no loss"
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        spent = f"{human(ledger.spent, 3)}/{human(self.budget, 3)}"
        line = f"[{count}] {point_id} {shown} ({status}); spent {spent} FLOPs"
        last = ledger.refits[-1] if ledger.refits else None
        if last is not None:
            # "~": a linearised screen, not yet the bootstrap that the stop decision waits for
            mark = "" if last.bootstrapped else "~"
            if not getattr(last.fit, "identified", True):
                line += "; law not identified yet"  # an infinite half-width would say the same, less plainly
            else:
                line += "; CI half-width " + ", ".join(
                    f"{k}={mark}{v:.3f}" for k, v in last.halfwidths.items()
                )
        self.emit(line)
        status_line = getattr(self.emit, "status", None)
        if status_line is not None:
            eta = eta_seconds(
                self.clock() - self.started,
                done=self.done,
                total=self.total,
                spent=ledger.spent,
                budget=self.budget,
                converge_at=converge_compute(ledger.refits, self.target_ci),
            )
            status_line(
                status_text(
                    done=self.done,
                    total=self.total,
                    spent=ledger.spent,
                    budget=self.budget,
                    halfwidths=dict(last.halfwidths) if last else {},
                    target_ci=self.target_ci,
                    eta=eta,
                )
            )
