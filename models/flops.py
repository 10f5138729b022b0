"""Exact matmul FLOPs per token for every model kind, attention included.

Counts what torch.utils.flop_counter counts (every matmul, 2 FLOPs per
multiply-add; norms, softmax and element-wise ops are not counted), and the
tests hold it to FlopCounterMode on a real forward+backward within 5%.

Per position of a packed sequence of length T (forward):
  decoder   L * (2 * (4 d^2 + 3 d h) + 4 T d)    projections + SwiGLU + QK^T and AV
            (+ 2 d E per layer for the MoE router; top-1 means one expert per token)
  head      2 d V on scored (text-target) positions only
  image     early fusion: 2 p d per image position (patch_dim p -> d)
            late fusion: the ViT per image position, 2 p d_v + L_v (2 (4 d_v^2 + 3 d_v h_v)
            + 4 P d_v) + 2 d_v d (projection), with P patches per image (bidirectional)
Training = 3 x forward (backward = 2 x forward), minus the input-gradient of
the patch embedding, which is never computed because pixels need no gradient.
Attention is counted dense (T x T) because the kernels compute it dense.

For late fusion this is the paper's C = 6 (N_v D_v + N D) plus attention.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from models.config import BlockStack, LateFusionConfig, MoEConfig, TextConfig

Composition = Mapping[str, float]  # {"image": fraction of image positions, "scored": fraction of scored}


def stack_matmul_params(s: BlockStack) -> int:
    """Weights touched by matmuls in one block: qkv + out (4 d^2) and SwiGLU (3 d h)."""
    return 4 * s.dim * s.dim + 3 * s.dim * s.ffn_dim


def stack_forward_flops(s: BlockStack, attn_len: int) -> float:
    """Forward FLOPs per position through a block stack attending over attn_len positions."""
    return s.n_layers * (2 * stack_matmul_params(s) + 4 * attn_len * s.dim)


def image_forward_flops(cfg: TextConfig) -> tuple[float, float]:
    """(forward FLOPs per image position, FLOPs of the patch embedding's input gradient)."""
    image = getattr(cfg, "image", None)
    if image is None:
        return 0.0, 0.0
    if isinstance(cfg, LateFusionConfig):
        enc = cfg.encoder
        fwd = (
            2 * image.patch_dim * enc.dim + stack_forward_flops(enc, image.n_patches) + 2 * enc.dim * cfg.dim
        )
        return fwd, 2 * image.patch_dim * enc.dim
    return 2 * image.patch_dim * cfg.dim, 2 * image.patch_dim * cfg.dim


def forward_flops_per_token(cfg: TextConfig, seq_len: int, composition: Composition) -> float:
    dec = stack_forward_flops(cfg, seq_len)
    if isinstance(cfg, MoEConfig):
        dec += cfg.n_layers * 2 * cfg.dim * cfg.n_experts
    head = 2 * cfg.dim * cfg.vocab_size * composition["scored"]
    img, _ = image_forward_flops(cfg)
    return dec + head + img * composition["image"]


def training_flops_per_token(cfg: TextConfig, seq_len: int, composition: Composition) -> float:
    """Forward + backward FLOPs per position for a given token composition."""
    _, skipped = image_forward_flops(cfg)
    return 3 * forward_flops_per_token(cfg, seq_len, composition) - skipped * composition["image"]


def mixture_composition(
    compositions: Mapping[str, tuple[float, float]], weights: Mapping[str, float]
) -> dict[str, float]:
    """Average the per-target (image, scored) fractions with sequence weights."""
    total = sum(weights[t] for t in compositions)
    img = sum(weights[t] * compositions[t][0] for t in compositions) / total
    scored = sum(weights[t] * compositions[t][1] for t in compositions) / total
    return {"image": img, "scored": scored}


def batch_composition(batch) -> dict[str, float]:
    """The composition of one real batch (for exact checks against the FLOP counter)."""
    n = batch["tokens"].numel()
    return {
        "image": float(batch["is_image"].sum()) / n,
        "scored": float((batch["targets"] != -100).sum()) / n,
    }


def training_flops(spec, n_tokens: float) -> float:
    """Planned C for a run: the spec's training FLOPs per token (its mixture's estimate) times tokens."""
    return float(spec.flops_per_token) * float(n_tokens)


@dataclass(kw_only=True)
class TokenCounts:
    """Positions a run really trained on, by modality: image patches, text, and scored text targets.

    Training FLOPs are affine in the (image, scored) fractions, so the FLOPs of these counts are
    exactly the sum of every batch's own FLOPs: C follows the run's mixture and data, not an average.
    """

    positions: int = 0
    image: int = 0
    scored: int = 0

    @property
    def text(self) -> int:
        return self.positions - self.image

    def add(self, batch) -> TokenCounts:
        self.positions += int(batch["tokens"].numel())
        self.image += int(batch["is_image"].sum())
        self.scored += int((batch["targets"] != -100).sum())
        return self

    @classmethod
    def of(cls, batch) -> TokenCounts:
        return cls().add(batch)

    def flops(self, cfg: TextConfig, seq_len: int) -> float:
        """Training FLOPs (forward + backward) of these positions through the model `cfg`."""
        if self.positions == 0:
            return 0.0
        comp = {"image": self.image / self.positions, "scored": self.scored / self.positions}
        return training_flops_per_token(cfg, seq_len, comp) * self.positions
