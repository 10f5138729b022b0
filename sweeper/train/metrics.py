"""Evaluation: token-weighted loss per target, and MoE routing statistics."""

from __future__ import annotations

import math

import torch

from models.moe_stats import routing_concentration, specialization_score


@torch.no_grad()
def evaluate(model, val_sets: dict[str, list[dict]], device: str = "cpu") -> tuple[dict[str, float], list]:
    """Mean next-token loss per target (token-weighted) and their plain average.

    Also returns routing counts per layer ([2, E]: text/image rows) for MoE models.
    """
    was_training = model.training
    model.eval()
    losses: dict[str, float] = {}
    routing: list[torch.Tensor] = []
    for target, batches in val_sets.items():
        total, n = 0.0, 0
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            out = model(batch)
            total += float(out.lm_loss) * out.n_targets
            n += out.n_targets
            _accumulate(routing, out.routing, getattr(model.cfg, "n_experts", 0))
        losses[target] = total / max(n, 1)
    losses["avg"] = sum(losses.values()) / len(losses)
    model.train(was_training)
    return losses, routing


def _accumulate(acc: list, routing: list, n_experts: int) -> None:
    for i, (expert, is_image) in enumerate(routing):
        counts = torch.stack(
            [
                torch.bincount(expert[~is_image], minlength=n_experts),
                torch.bincount(expert[is_image], minlength=n_experts),
            ]
        ).cpu()
        if i < len(acc):
            acc[i] += counts
        else:
            acc.append(counts)


def moe_metrics(routing: list[torch.Tensor], n_experts: int) -> dict[str, float]:
    """Specialization per layer and averaged; routing concentration per modality."""
    per_layer = [specialization_score(c) for c in routing]
    finite = [s for s in per_layer if math.isfinite(s)]
    out = {"moe_specialization": sum(finite) / len(finite) if finite else float("nan")}
    out.update({f"moe_specialization_layer{i}": s for i, s in enumerate(per_layer)})
    total = torch.stack(routing).sum(dim=0)
    out["moe_concentration_text"] = routing_concentration(total[0])
    out["moe_concentration_image"] = routing_concentration(total[1])
    return out
