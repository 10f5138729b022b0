"""Warmup-stable-decay learning-rate schedule (Hägele et al., as in the paper).

Linear warmup, then constant, then a cooldown over the last `cooldown_frac`
of the steps that decays to zero as 1 - sqrt(progress) (the paper's
"inverse square root" cooldown). Because the stable phase does not depend on
the run length, one run per size can be branched into cooldowns at several
token counts.
"""

from __future__ import annotations

import math


def warmup_steps_for(
    total_steps: int, *, warmup_frac: float | None = None, warmup_steps: int | None = None
) -> int:
    """Explicit warmup steps win; otherwise a fraction of the run (at least one step)."""
    if warmup_steps is not None:
        return max(0, min(int(warmup_steps), total_steps))
    return max(1, min(total_steps, round((warmup_frac or 0.0) * total_steps)))


def cooldown_start(total_steps: int, cooldown_frac: float) -> int:
    """First cooldown step (0-based) of a run of `total_steps`; cooldown branches start here."""
    return total_steps - int(round(cooldown_frac * total_steps))


def cooldown_multiplier(i: int, length: int) -> float:
    """LR multiplier on step i (0-based) of a cooldown of `length` steps: 1 - sqrt(progress)."""
    return max(0.0, 1.0 - math.sqrt(i / length))


def wsd_multiplier(step: int, total_steps: int, *, warmup: int, cooldown_frac: float) -> float:
    """LR multiplier in [0, 1] for 0-based `step` of a run of `total_steps` steps."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    start = cooldown_start(total_steps, cooldown_frac)
    cooldown = total_steps - start
    if cooldown <= 0 or step < start:
        return 1.0
    return cooldown_multiplier(step - start, cooldown)  # 1 on the first cooldown step, ~0 on the last
