"""Architecture configs: plain, frozen, keyword-only data (torchtitan style).

One dataclass per model kind. Kinds share fields by inheritance so the
decoder code reads the same attributes whatever the kind; only the parts a
kind adds (image input, vision encoder, experts) are new fields.
"""

from __future__ import annotations

from dataclasses import dataclass

ROUTINGS = ("agnostic", "aware")


@dataclass(frozen=True, kw_only=True)
class ImageConfig:
    """Square images cut into non-overlapping square patches."""

    image_size: int
    patch_size: int
    channels: int = 3

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def patch_dim(self) -> int:
        return self.channels * self.patch_size**2


@dataclass(frozen=True, kw_only=True)
class BlockStack:
    """A stack of pre-norm transformer blocks (attention + SwiGLU FFN)."""

    dim: int
    n_layers: int
    n_heads: int
    ffn_dim: int
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.dim % self.n_heads:
            raise ValueError(f"dim {self.dim} is not divisible by n_heads {self.n_heads}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


@dataclass(frozen=True, kw_only=True)
class TextConfig(BlockStack):
    """dense_text: a decoder-only language model over text tokens."""

    vocab_size: int
    rope_theta: float = 10000.0


@dataclass(frozen=True, kw_only=True)
class EarlyFusionConfig(TextConfig):
    """early_fusion: the same decoder; image patches enter through one linear layer."""

    image: ImageConfig


@dataclass(frozen=True, kw_only=True)
class LateFusionConfig(EarlyFusionConfig):
    """late_fusion: a bidirectional ViT encoder + linear projection feeds the decoder."""

    encoder: BlockStack


@dataclass(frozen=True, kw_only=True)
class MoEConfig(EarlyFusionConfig):
    """moe: early fusion whose FFNs are dropless top-k mixtures of SwiGLU experts."""

    n_experts: int = 8
    top_k: int = 1
    routing: str = "agnostic"  # "aware": image tokens use image experts, text tokens text experts
    aux_loss_weight: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.routing not in ROUTINGS:
            raise ValueError(f"routing {self.routing!r} not in {ROUTINGS}")
        if self.routing == "aware" and self.n_experts % 2:
            raise ValueError("modality-aware routing splits experts in two halves: n_experts must be even")
        if self.top_k != 1:
            raise ValueError("only top-1 routing is implemented (the paper's setting)")


def swiglu_hidden(dim: int, multiple_of: int) -> int:
    """FFN width of SwiGLU: 8/3 of the model width rounded up (OpenLM/DCLM rule).

    With multiple_of=256 this reproduces the paper's parameter counts
    (e.g. width 800 -> 2304, 1632 -> 4352).
    """
    hidden = int(8 * dim / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)
