"""Sparse early fusion: every FFN is a dropless top-1 mixture of SwiGLU experts.

Dropless (as in the paper's MegaBlocks setup): there is no capacity limit;
each expert processes exactly the tokens routed to it, however many.
The chosen expert's output is scaled by its router probability, which is how
the router gets a gradient. A Switch-style load-balancing loss
E * sum_e f_e * P_e (f_e: fraction of tokens sent to e, P_e: mean router
probability of e) is 1 for perfectly uniform routing and larger otherwise.

Routing "agnostic" (the paper's default and winner) lets the learned router
choose among all experts; "aware" splits experts into a text half and an
image half and routes each token within its modality's half.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.config import MoEConfig
from models.early_fusion import DecoderLM
from models.layers import SwiGLU


def load_balancing_loss(probs: torch.Tensor, expert: torch.Tensor, n_experts: int) -> torch.Tensor:
    """E * sum_e f_e P_e for router probabilities [n, E] and chosen experts [n]."""
    f = torch.bincount(expert, minlength=n_experts).to(probs.dtype) / max(expert.numel(), 1)
    return n_experts * (f * probs.mean(dim=0)).sum()


class MoEFFN(nn.Module):
    takes_ctx = True  # Block passes the modality of each position

    def __init__(self, cfg: MoEConfig):
        super().__init__()
        self.n_experts, self.routing = cfg.n_experts, cfg.routing
        self.router = nn.Linear(cfg.dim, cfg.n_experts, bias=False)
        self.experts = nn.ModuleList(SwiGLU(cfg.dim, cfg.ffn_dim) for _ in range(cfg.n_experts))

    def route(self, logits: torch.Tensor, is_image: torch.Tensor) -> torch.Tensor:
        """Top-1 expert per token; modality-aware routing masks the other half out."""
        if self.routing == "aware":
            half = self.n_experts // 2
            image_expert = torch.arange(self.n_experts, device=logits.device) >= half
            allowed = image_expert[None, :] == is_image[:, None]
            logits = logits.masked_fill(~allowed, float("-inf"))
        return logits

    def forward(self, x: torch.Tensor, ctx: dict) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        is_image = ctx["is_image"].reshape(-1)
        probs = F.softmax(self.route(self.router(x).float(), is_image), dim=-1)
        gate, expert = probs.max(dim=-1)
        out = torch.zeros_like(x)
        for e, ffn in enumerate(self.experts):
            # Every routed token is processed (no capacity, no drops), and every expert is
            # called, on no tokens when none chose it: ranks under ZeRO-2/3 must call the same
            # modules, and an unrouted expert gets a zero gradient, as in expert-parallel training.
            idx = (expert == e).nonzero(as_tuple=True)[0]
            out.index_add_(0, idx, ffn(x[idx]) * gate[idx, None].to(x.dtype))
        ctx["aux"].append(load_balancing_loss(probs, expert, self.n_experts))
        ctx["routing"].append((expert.detach(), is_image))
        return out.view(shape)


class MoELM(DecoderLM):
    cfg: MoEConfig

    def make_ffn(self, layer: int) -> nn.Module:
        return MoEFFN(self.cfg)
