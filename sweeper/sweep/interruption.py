"""SIGINT (Ctrl+C) and SIGTERM (`ray job stop`, a pod's eviction) during a sweep: a quick, honest end.

The first signal is recorded and asks the trial loop to stop: Ray Tune ends its loop through its own
graceful stop (SIGUSR1, which it always listens to), so the trials in flight are stopped and keep their
last checkpoints; the in-process driver stops before its next trial. The driver then marks the sweep
interrupted rather than complete, and `--resume` continues each stopped trial from its checkpoint. A
second signal stops at once.
"""

from __future__ import annotations

import os
import signal
import threading


class Interruption:
    """A context in which the first SIGINT or SIGTERM sets `signal` (its name) instead of killing."""

    def __init__(self, *, tune_loop: bool) -> None:
        self.tune_loop = tune_loop  # a Ray Tune loop runs in this process and hears SIGUSR1
        self.signal: str | None = None
        self._previous: dict = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def __enter__(self) -> Interruption:
        if threading.current_thread() is threading.main_thread():  # Python handles signals there only
            # Tune would install its own SIGINT handler, which logs in its words and cannot tell us it fired
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt  # the second signal: stop now, whatever is lost
        self.signal = signal.Signals(signum).name
        usr1 = getattr(signal, "SIGUSR1", None)
        if (
            self.tune_loop and usr1 is not None and callable(signal.getsignal(usr1))
        ):  # end Tune's loop gracefully
            os.kill(os.getpid(), usr1)
