"""Expert-usage statistics from routing counts (pure tensor math, no model).

`counts` is [2, E]: row 0 text tokens, row 1 image tokens routed to each expert.
"""

from __future__ import annotations

import math

import torch


def _entropy_bits(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp_min(0)
    logs = torch.where(p > 0, p.log2(), torch.zeros_like(p))
    return -(p * logs).sum(dim=-1)


def specialization_score(counts: torch.Tensor) -> float:
    """The paper's score (§4.4): mean over experts of 1 - H(p_e).

    Each modality's counts are first normalised by that modality's total (so
    a modality with more tokens does not look "preferred"), then p_e is the
    text share of expert e and H the binary entropy in bits. 1 = every expert
    serves a single modality; 0 = every expert serves both equally. Experts
    that receive no token are left out. NaN when a modality is absent.
    """
    counts = counts.double()
    totals = counts.sum(dim=1, keepdim=True)
    if bool((totals == 0).any()):
        return float("nan")
    share = counts / totals  # [2, E]
    used = share.sum(dim=0) > 0
    p_text = share[0, used] / share[:, used].sum(dim=0)
    h = _entropy_bits(torch.stack([p_text, 1 - p_text], dim=-1))
    return float((1 - h).mean())


def routing_concentration(counts_one_modality: torch.Tensor) -> float:
    """1 - entropy of a modality's distribution over experts / log(E): 0 uniform, 1 one expert."""
    c = counts_one_modality.double()
    if float(c.sum()) == 0:
        return float("nan")
    e = c.numel()
    return float(1 - _entropy_bits(c / c.sum()) / math.log2(e))
