"""Reading and validating run tables: every bad input names the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sweeper.errors import SweeperInputError

# Lower-cased CSV header -> contract column (contract 1 in the fitter's brief).
ALIASES = {
    "n": "n_params",
    "params": "n_params",
    "n_params": "n_params",
    "parameters": "n_params",
    "d": "n_tokens",
    "tokens": "n_tokens",
    "n_tokens": "n_tokens",
    "loss": "loss",
    "flops": "flops",
    "c": "flops",
    "compute": "flops",
    "budget": "budget",
    "target": "target",
}
TARGET_COLUMNS = {
    "caption": "loss_caption",
    "interleaved": "loss_interleaved",
    "text": "loss_text",
    "average": "loss",
}


def normalise_columns(frame: pd.DataFrame) -> pd.DataFrame:
    renamed = {}
    for col in frame.columns:
        key = str(col).strip().lower()
        renamed[col] = ALIASES.get(key, key)
    dupes = pd.Index(renamed.values())
    dupes = sorted(set(dupes[dupes.duplicated()]))
    if dupes:
        raise SweeperInputError(
            "columns",
            list(frame.columns),
            f"columns {dupes} are given twice under different names; keep one of each",
        )
    return frame.rename(columns=renamed)


def read_runs_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV of runs, normalise its column names and check the basics."""
    path = Path(path)
    if not path.is_file():
        raise SweeperInputError("FILE", str(path), "pass the path of an existing CSV file")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SweeperInputError("FILE", str(path), f"could not parse it as CSV ({exc})") from None
    frame = normalise_columns(frame)
    missing = [c for c in ("n_params", "n_tokens", "loss") if c not in frame]
    if missing:
        raise SweeperInputError(
            "columns",
            list(frame.columns),
            f"missing {missing}; need N, D and loss (also accepted: n_params/params, "
            "n_tokens/tokens, case-insensitive)",
        )
    return frame


def _numeric(frame: pd.DataFrame, col: str) -> np.ndarray:
    try:
        return pd.to_numeric(frame[col], errors="raise").to_numpy(float)
    except (ValueError, TypeError):
        bad = frame[col][pd.to_numeric(frame[col], errors="coerce").isna()].head(3).tolist()
        raise SweeperInputError(col, bad, f"every value of {col} must be a number") from None


def _first_bad(values: np.ndarray, ok: np.ndarray) -> list:
    return values[~ok][:3].tolist()


def validate_frame(
    frame: pd.DataFrame, *, target: str = "loss", n_theta: int | None = 5, min_sizes: int = 3
) -> pd.DataFrame:
    """Check positivity, finiteness and (unless n_theta is None) identifiability;
    return a numeric copy."""
    out = frame.copy()
    for col, what in (("n_params", "N (parameters)"), ("n_tokens", "D (tokens)")):
        if col not in out:
            raise SweeperInputError("columns", list(out.columns), f"missing {col}")
        v = _numeric(out, col)
        ok = np.isfinite(v) & (v > 0)
        if not ok.all():
            raise SweeperInputError(col, _first_bad(v, ok), f"{what} must be finite and > 0 in every run")
        out[col] = v
    if target not in out:
        raise SweeperInputError(
            "target", target, f"no column {target!r}; have {[c for c in out.columns if c.startswith('loss')]}"
        )
    v = _numeric(out, target)
    ok = np.isfinite(v) & (v > 0)
    if not ok.all():
        raise SweeperInputError(
            target, _first_bad(v, ok), "loss must be a finite number > 0 (drop failed or diverged runs)"
        )
    out[target] = v
    if n_theta is not None:
        check_identifiable(out, n_theta, min_sizes)
    return out


def check_run_count(frame: pd.DataFrame, n_theta: int) -> None:
    """Fewer runs than parameters is bad input; everything else the fit reports (identify.py)."""
    if len(frame) < n_theta + 1:
        raise SweeperInputError(
            "runs", len(frame), f"need at least {n_theta + 1} runs to fit {n_theta} parameters"
        )


def check_identifiable(frame: pd.DataFrame, n_theta: int, min_sizes: int) -> None:
    check_run_count(frame, n_theta)
    sizes = frame["n_params"].nunique()
    if sizes < min_sizes:
        raise SweeperInputError(
            "distinct N", sizes, f"need runs at {min_sizes} or more model sizes to separate E, A and alpha"
        )
    tokens = frame["n_tokens"].nunique()
    if tokens < 3:
        raise SweeperInputError(
            "distinct D", tokens, "need runs at 3 or more token counts to separate B and beta"
        )
