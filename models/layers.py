"""Building blocks shared by every kind: RMSNorm, RoPE, QK-norm attention, SwiGLU.

Attention takes an explicit boolean mask (True = may attend) because the
multimodal mask is causal over text but bidirectional inside an image. On
CUDA it runs through scaled_dot_product_attention (flash / efficient
kernels); on CPU it is written out as two matmuls, so that it is both fast
for tiny shapes and visible to torch.utils.flop_counter (the fused CPU
kernel is not registered there, and our FLOP accounting is tested against it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.config import BlockStack


def rope_tables(seq_len: int, head_dim: int, theta: float, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables [seq_len, head_dim/2] for rotary position embeddings."""
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    ang = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float32), inv)
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x1, x2) of the two head-dim halves; x is [B, H, T, Dh]."""
    x1, x2 = x.float().chunk(2, dim=-1)
    out = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: BlockStack):
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.wqkv = nn.Linear(cfg.dim, 3 * cfg.dim, bias=False)
        self.wo = nn.Linear(cfg.dim, cfg.dim, bias=False)
        # QK-norm keeps attention logits bounded, which is what makes the
        # paper's fairly high learning rates stable.
        self.q_norm = nn.RMSNorm(cfg.head_dim, eps=cfg.norm_eps)
        self.k_norm = nn.RMSNorm(cfg.head_dim, eps=cfg.norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, rope) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.wqkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        out = attend(q, k, v, mask)
        return self.wo(out.transpose(1, 2).reshape(b, t, d))


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v; mask: bool keep-mask [B, 1, T, T], "causal", or None (full)."""
    causal = isinstance(mask, str)  # "causal": plain causal mask, lets CUDA use flash kernels
    if q.is_cuda:
        if causal:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        t = q.shape[-2]
        mask = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1) @ v


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w13 = nn.Linear(dim, 2 * hidden, bias=False)  # gate and up in one matmul
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w13(x).chunk(2, dim=-1)
        return self.w2(F.silu(gate) * up)


class Block(nn.Module):
    """Pre-norm block. `ffn` may be replaced (MoE); it receives (x, ctx)."""

    def __init__(self, cfg: BlockStack, ffn: nn.Module | None = None):
        super().__init__()
        self.attn_norm = nn.RMSNorm(cfg.dim, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ffn_norm = nn.RMSNorm(cfg.dim, eps=cfg.norm_eps)
        self.ffn = ffn if ffn is not None else SwiGLU(cfg.dim, cfg.ffn_dim)

    def forward(self, x, mask, rope, ctx: dict) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), mask, rope)
        h = self.ffn_norm(x)
        return x + (self.ffn(h, ctx) if getattr(self.ffn, "takes_ctx", False) else self.ffn(h))


def init_weights(module: nn.Module, n_layers: int) -> None:
    """Small normal init; output projections scaled by depth (GPT-2 rule) for stability."""
    for name, p in module.named_parameters():
        if p.dim() < 2:
            continue
        std = 0.02
        if name.endswith("wo.weight") or name.endswith("w2.weight"):
            std = 0.02 / math.sqrt(2 * n_layers)
        nn.init.normal_(p, mean=0.0, std=std)


def multimodal_mask(segment: torch.Tensor) -> torch.Tensor:
    """Keep-mask [B, 1, T, T]: causal everywhere, plus full attention inside each image.

    `segment` is [B, T]: 0 for text, k > 0 for the positions of the k-th
    image of that sequence. Position i may see j if j <= i, or if i and j
    belong to the same image.
    """
    t = segment.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool, device=segment.device).tril()
    same_image = (segment[:, :, None] == segment[:, None, :]) & (segment[:, :, None] > 0)
    return (causal[None] | same_image)[:, None]
