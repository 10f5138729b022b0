"""Ray's, MLflow's and Optuna's own log lines go to a file, not the terminal, while a sweep runs.

The terminal shows the sweep (trial lines and a status line); what the libraries
say on the way (Ray's start-up and token-auth banners, MLflow's database set-up,
Python warnings raised inside them) is kept in one log file whose path is printed
once, so nothing is lost when something does go wrong.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

PREFIXES = ("ray", "mlflow", "alembic", "sqlalchemy", "optuna", "urllib3", "grpc", "py.warnings")
# With Tune's auto loggers off (below) no trial writes progress.csv, so the ResultGrid that
# Tuner.fit() returns warns that it cannot read any; we never read it: not even worth the file.
SILENCED = ("ray.tune.analysis.experiment_analysis",)


def quiet_tune_defaults() -> None:
    """Tune's CSV/JSON/TensorBoard logger callbacks off unless the user asked for them
    (TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=0): MLflow holds every result, and the TensorBoard
    one prints a line per trial. Read when Tune builds its callbacks, so set it before any run."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's newer console output ignores verbose=0
    # MLflow prints a "View run ... at: URL" line per run it ends; the summary gives the one link that matters
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def default_log_path(kind: str = "run") -> Path:
    return Path(".sweeper/logs").resolve() / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


class LibraryLogs:
    """Context manager: library loggers write to `path` (and not the terminal) until exit."""

    def __init__(self, path: Path | str | None = None, *, kind: str = "run"):
        self.path = Path(path) if path else default_log_path(kind)
        self._saved: list[tuple[logging.Logger, list, bool, int]] = []
        self._handler: logging.Handler | None = None
        self._captured = False

    def _loggers(self) -> list[logging.Logger]:
        names = set(PREFIXES)
        for name, found in list(logging.root.manager.loggerDict.items()):
            if isinstance(found, logging.Logger) and found.handlers and name.startswith(PREFIXES):
                names.add(name)  # a child logger with its own (terminal) handler
        return [logging.getLogger(name) for name in sorted(names)]

    def __enter__(self) -> LibraryLogs:
        # Imported first: on import each sets up its own terminal handler, which would replace ours.
        import mlflow  # noqa: F401
        import ray  # noqa: F401

        quiet_tune_defaults()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handler = logging.FileHandler(self.path, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        for logger in self._loggers():
            self._saved.append((logger, list(logger.handlers), logger.propagate, logger.level))
            logger.handlers = [self._handler]
            logger.propagate = False
        for name in SILENCED:
            logger = logging.getLogger(name)
            self._saved.append((logger, list(logger.handlers), logger.propagate, logger.level))
            logger.setLevel(logging.ERROR)
        # warnings.warn inside the libraries (and numpy's) goes to the file via py.warnings
        self._captured = not logging._warnings_showwarning  # type: ignore[attr-defined]
        logging.captureWarnings(True)
        return self

    def __exit__(self, *exc) -> None:
        for logger, handlers, propagate, level in reversed(self._saved):
            logger.handlers, logger.propagate, logger.level = handlers, propagate, level
        self._saved.clear()
        if self._captured:
            logging.captureWarnings(False)
        if self._handler is not None:
            self._handler.close()
