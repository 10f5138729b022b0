"""Progress of `sweeper run`: finished trials as lines, and on a terminal a live status line.

On a terminal the status line (trials, compute spent against budget, current
exponents with their CIs) redraws in place below the scrolling trial lines;
elsewhere (CI logs, files, `ray job` logs) the same information comes as plain
lines, one per finished trial.
"""

from __future__ import annotations

import sys
from typing import Callable, TextIO



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


def exponents_text(fit) -> str:
    parts = []
    for name in ("alpha", "beta", "a", "b"):
        value = {**fit.params, **fit.derived}.get(name)
        if value is None:
            continue
        shown = fit.ci_text(name, ".3f")
        parts.append(f"{name}={value:.3f}" + (f" {shown}" if shown else ""))
    return " ".join(parts) + ("" if fit.identified else " (not identified)")


class ProgressPrinter:
    """Per finished trial: count, loss, compute spent against budget, current watched CIs (from the ledger)."""

    def __init__(self, total: int, budget: float, emit: Callable[[str], None]):
        self.total, self.budget, self.emit, self.done = total, budget, emit, 0

    def trial_finished(self, point_id: str, loss, status: str, ledger) -> None:
        self.done += 1
        shown = f"loss={loss:.4f}" if isinstance(loss, float) else "no loss"
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        line = f"[{count}] {point_id} {shown} ({status}); spent {ledger.spent:.3g}/{self.budget:.3g} FLOPs"
        last = ledger.refits[-1] if ledger.refits else None
        if last is not None:
            # "~": a linearised screen, not yet the bootstrap that the stop decision waits for
            mark = "" if last.bootstrapped else "~"
            line += "; CI half-width " + ", ".join(f"{k}={mark}{v:.3f}" for k, v in last.halfwidths.items())
        self.emit(line)
        status_line = getattr(self.emit, "status", None)
        if status_line is not None:
            fitted = f" | {exponents_text(last.fit)}" if last is not None and last.fit is not None else ""
            status_line(f"{count} trials | {ledger.spent:.3g}/{self.budget:.3g} FLOPs{fitted}")
