"""Numbers for people: 2e14, not 200000000000000.0 or 2e+14.

One formatter for everything the report, the summary and the MLflow run
description print, so a budget reads the same everywhere.
"""

from __future__ import annotations

import math
import re

_EXPONENT = re.compile(r"e([+-])0*(\d+)")


def human(value, digits: int = 4) -> str:
    """`digits` significant digits; scientific as 2e14 / 3.1e-5 outside [1e-3, 1e5); '-' if not a number."""
    if value is None or isinstance(value, bool):
        return "-" if value is None else str(value)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return "-" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        decimals = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
        text = f"{x:.{decimals}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    text = f"{x:.{max(digits - 1, 0)}e}"
    mantissa, _, _ = text.partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    exponent = math.floor(math.log10(abs(float(text))))
    return f"{mantissa}e{exponent}"


def human_ci(value, ci, digits: int = 4) -> str:
    """`value [lo, hi]`, or the value alone without an interval; '-' without a finite value."""
    if value is None or not math.isfinite(float(value)):
        return "-"
    shown = human(value, digits)
    return f"{shown} [{human(ci[0], digits)}, {human(ci[1], digits)}]" if ci else shown


def humanize_text(text: str, digits: int = 4) -> str:
    """Every long plain number in a string (e.g. a param '200000000000000.0') rewritten by `human`."""
    pattern = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])")
    return pattern.sub(lambda m: human(float(m.group()), digits) if _needs(m.group()) else m.group(), text)


def _needs(token: str) -> bool:
    return (
        bool(_EXPONENT.search(token.lower()))
        or len(token.replace("-", "").replace(".", "")) > 6
        or token.endswith(".0")
    )
