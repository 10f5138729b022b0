"""Per-size training recipes: the paper's (Table 6, Appendix A) and the tiny ladder's.

The paper: AdamW (0.9, 0.95), fully decoupled weight decay 1e-4, gradient
clip 1.0, batch 2k sequences of 1k tokens (2M tokens), constant LR with a
1-sqrt cooldown over the last 20%, warmup 1k steps for runs of 1k-4k steps,
2.5k for 5k-15k, 5k above (MoE: 2.5k for every run under 20k steps), LR by
width (below), vision-encoder LR x0.1 for late fusion.
"""

from __future__ import annotations

import math

from sweeper.errors import SweeperInputError
from sweeper.train.loop import TrainHParams

# Table 6 learning rates by paper size label.
PAPER_LR = {
    "early_fusion": {
        "275M": 1.5e-3,
        "468M": 1.5e-3,
        "932M": 5e-4,
        "1.63B": 4.2e-4,
        "2.28B": 4e-4,
        "3.35B": 3.5e-4,
    },
    "late_fusion": {
        "289M": 1.5e-3,
        "494M": 1.5e-3,
        "1B": 5e-4,
        "1.75B": 4.2e-4,
        "2.43B": 3.8e-4,
        "3.7B": 3.3e-4,
    },
    "moe": {"275M": 1.5e-3, "468M": 1.5e-3, "932M": 5e-4, "1.63B": 4.2e-4, "2.28B": 4e-4, "3.35B": 3.5e-4},
}
PAPER_LR["dense_text"] = PAPER_LR["early_fusion"]
PAPER_BATCH_SEQUENCES = 2048  # 2k samples x 1k context = 2M tokens


def paper_warmup_steps(total_steps: int, kind: str) -> int:
    """Appendix A: 1k (runs up to 4k steps), 2.5k (5k-15k), 5k max; MoE 2.5k under 20k steps."""
    if kind == "moe" and total_steps < 20_000:
        return min(2_500, total_steps)
    if total_steps <= 4_000:
        return min(1_000, total_steps)
    if total_steps <= 15_000:
        return 2_500
    return 5_000


def paper_lr(spec) -> float:
    try:
        return PAPER_LR[spec.kind][spec.size]
    except KeyError:
        raise SweeperInputError(
            "model size", spec.size, f"paper recipes exist for {sorted(PAPER_LR[spec.kind])}"
        ) from None


def paper_hparams(spec, n_tokens: int, **overrides) -> TrainHParams:
    """The paper's recipe for a paper-ladder spec trained on n_tokens."""
    steps = max(1, math.ceil(n_tokens / (PAPER_BATCH_SEQUENCES * spec.seq_len)))
    return TrainHParams(
        **{
            "lr": paper_lr(spec),
            "batch_size": PAPER_BATCH_SEQUENCES,
            "warmup_steps": paper_warmup_steps(steps, spec.kind),
            **overrides,
        }
    )


# ---- the tiny ladder ---------------------------------------------------------------
TINY_BASE_LR, TINY_BASE_WIDTH = 6e-3, 64  # LR ~ 1/sqrt(width), tuned by hand on tiny-2..tiny-6
# Below this many steps, shrink the batch rather than the number of updates. Measured at 4e11 FLOPs
# on text of the generated language (dense_text), tiny-5 reached loss 1.06 at batch 12 (260 steps),
# 0.87 at batch 4 and 0.70 at batch 2 with 1.5x the LR (1570 steps): limited by updates, not tokens.
TINY_MIN_STEPS = 1500


def tiny_lr(width: int) -> float:
    """Smaller widths tolerate larger steps (as in Table 6, LR falls with width)."""
    return TINY_BASE_LR * math.sqrt(TINY_BASE_WIDTH / width)


def tiny_batch_size(spec, n_tokens: int, *, max_batch: int = 16, min_batch: int = 2) -> int:
    """Sequences per step: at most max_batch, fewer for short runs so they still get ~1500 updates."""
    per_seq = spec.seq_len
    return int(min(max_batch, max(min_batch, n_tokens // (per_seq * TINY_MIN_STEPS))))


def tiny_hparams(spec, n_tokens: int, **overrides) -> TrainHParams:
    """Recipe for the tiny ladder (paper schedule shape, LR by width, batch by run length)."""
    return TrainHParams(
        **{
            "lr": tiny_lr(spec.config.dim),
            "batch_size": tiny_batch_size(spec, n_tokens),
            "warmup_frac": 0.05,
            **overrides,
        }
    )


def recipe(spec, n_tokens: int, **overrides) -> TrainHParams:
    """The recipe for any registry spec: paper sizes get Table 6, tiny sizes the tiny recipe."""
    if spec.size in PAPER_LR.get(spec.kind, {}):
        return paper_hparams(spec, n_tokens, **overrides)
    return tiny_hparams(spec, n_tokens, **overrides)
