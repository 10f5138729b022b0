"""Model registry: kind + size -> architecture, parameter counts, FLOPs per token.

Two ladders per kind:
- "paper": Table 6 of the reference study (depth 24, width grows; vocabulary
  50,432, untied embeddings, SwiGLU width 8/3 d rounded to 256, 224 px images
  in 14 px patches, context 1,024). Total parameter counts reproduce the
  paper's labels (275M ... 3.35B; late fusion 289M ... 3.7B).
- "tiny": the same architectures small enough to train on a CPU core, used
  by the embedded default's isoFLOP sweeps.

N (`n_params`) is what the scaling law uses: non-embedding parameters
(token embedding and output head excluded), and for MoE the *active*
non-embedding count (one expert per layer). Parameter counts come from
instantiating the model on the meta device, so they cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache, lru_cache

import torch

from models.config import (
    BlockStack,
    EarlyFusionConfig,
    ImageConfig,
    LateFusionConfig,
    MoEConfig,
    TextConfig,
    swiglu_hidden,
)
from sweeper.errors import SweeperInputError

KINDS = ("dense_text", "early_fusion", "late_fusion", "moe")
LADDERS = ("tiny", "paper")

# ---- the paper's ladder (Table 6) ------------------------------------------------
PAPER_VOCAB, PAPER_SEQ_LEN = 50432, 1024
PAPER_IMAGE = ImageConfig(image_size=224, patch_size=14)
# (label, width, heads): heads chosen so head_dim is a multiple of 8 (fused attention kernels)
PAPER_DECODERS = (
    ("275M", 800, 10),
    ("468M", 1088, 17),
    ("932M", 1632, 17),
    ("1.63B", 2208, 23),
    ("2.28B", 2624, 41),
    ("3.35B", 3232, 101),
)
# late fusion: (label, decoder width, heads, encoder width, encoder heads); both 24 layers
PAPER_LATE = (
    ("289M", 768, 12, 384, 6),
    ("494M", 1024, 16, 512, 8),
    ("1B", 1536, 24, 768, 12),
    ("1.75B", 2048, 32, 1024, 16),
    ("2.43B", 2464, 28, 1184, 37),
    ("3.7B", 3072, 48, 1536, 24),
)

# ---- the tiny ladder -----------------------------------------------------------------
TINY_VOCAB, TINY_SEQ_LEN, TINY_LAYERS = 128, 128, 4
TINY_IMAGE = ImageConfig(image_size=24, patch_size=6)  # 16 patches of 6x6x3
# (width, heads). Eight sizes from ~5k to ~0.8M non-embedding parameters. Measured
# (early fusion, 45/45/10): the best size is ~15k at 1e11 FLOPs and ~30k at 1e12,
# so isoFLOP slices over 1e11-1e13 have their minimum inside the ladder with
# sizes on both sides of it (a U, not a monotone curve).
TINY_WIDTHS = ((8, 1), (16, 1), (24, 2), (32, 2), (48, 3), (64, 4), (96, 6), (128, 8))
TINY_ENCODER = {8: 16, 16: 16, 24: 16, 32: 16, 48: 32, 64: 32, 96: 48, 128: 64}  # late fusion: encoder width


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    kind: str
    size: str
    config: TextConfig
    seq_len: int
    n_params: int  # N for the law: non-embedding (MoE: active non-embedding)
    n_params_total: int
    n_params_non_embedding: int
    n_params_active: int  # non-embedding parameters a token actually uses
    flops_per_token: float  # training FLOPs per token at the default 45/45/10 mixture (at_mixture: another)


def _stack(width: int, heads: int, layers: int, multiple_of: int) -> dict:
    return dict(dim=width, n_layers=layers, n_heads=heads, ffn_dim=swiglu_hidden(width, multiple_of))


def _config(kind: str, dec: dict, vocab: int, image: ImageConfig, encoder: dict | None = None) -> TextConfig:
    if kind == "dense_text":
        return TextConfig(**dec, vocab_size=vocab)
    if kind == "early_fusion":
        return EarlyFusionConfig(**dec, vocab_size=vocab, image=image)
    if kind == "moe":
        return MoEConfig(**dec, vocab_size=vocab, image=image)
    return LateFusionConfig(**dec, vocab_size=vocab, image=image, encoder=BlockStack(**encoder))


def _ladder_configs(kind: str, name: str) -> list[tuple[str, TextConfig, int]]:
    if name == "paper":
        if kind == "late_fusion":
            return [
                (
                    lab,
                    _config(kind, _stack(w, h, 24, 256), PAPER_VOCAB, PAPER_IMAGE, _stack(ew, eh, 24, 256)),
                    PAPER_SEQ_LEN,
                )
                for lab, w, h, ew, eh in PAPER_LATE
            ]
        return [
            (lab, _config(kind, _stack(w, h, 24, 256), PAPER_VOCAB, PAPER_IMAGE), PAPER_SEQ_LEN)
            for lab, w, h in PAPER_DECODERS
        ]
    out = []
    for i, (w, h) in enumerate(TINY_WIDTHS, start=1):
        enc = _stack(TINY_ENCODER[w], max(1, TINY_ENCODER[w] // 16), 2, 16)
        out.append(
            (
                f"tiny-{i}",
                _config(kind, _stack(w, h, TINY_LAYERS, 16), TINY_VOCAB, TINY_IMAGE, enc),
                TINY_SEQ_LEN,
            )
        )
    return out


def count_params(config: TextConfig) -> dict[str, int]:
    """total / non_embedding / active, from the real module built on the meta device."""
    with torch.device("meta"):
        model = _build(config)
    total = sum(p.numel() for p in model.parameters())
    embedding = model.tok_embeddings.weight.numel() + model.output.weight.numel()
    inactive = 0
    if isinstance(config, MoEConfig):  # top-1: all experts but one are idle for a given token
        per_expert = sum(p.numel() for p in model.layers[0].ffn.experts[0].parameters())
        inactive = config.n_layers * (config.n_experts - config.top_k) * per_expert
    non_embedding = total - embedding
    return {"total": total, "non_embedding": non_embedding, "active": non_embedding - inactive}


def flops_per_token_at(config: TextConfig, seq_len: int, mixture=None) -> float:
    """Training FLOPs per token of the generated data at `mixture` (a name, weights, or None: 45/45/10).

    Image patches and text positions cost different work, so this moves with the mixture; the
    train loop counts a trial's real batches (models.flops.TokenCounts) for the C it reports.
    """
    from models.flops import mixture_composition, training_flops_per_token
    from sweeper.data import TARGETS, DataConfig, mixture_for, token_composition

    dcfg = DataConfig(seq_len=seq_len, image=getattr(config, "image", None))
    weights = dict(zip(TARGETS, mixture_for(dcfg, mixture)))
    comps = {t: token_composition(dcfg, t) for t in dcfg.targets if weights[t] > 0}
    return training_flops_per_token(config, seq_len, mixture_composition(comps, weights))


def _make_spec(kind: str, size: str, config: TextConfig, seq_len: int) -> ModelSpec:
    counts = count_params(config)
    return ModelSpec(
        kind=kind,
        size=size,
        config=config,
        seq_len=seq_len,
        n_params=counts["active"],
        n_params_total=counts["total"],
        n_params_non_embedding=counts["non_embedding"],
        n_params_active=counts["active"],
        flops_per_token=flops_per_token_at(config, seq_len),
    )


def at_mixture(spec: ModelSpec, mixture) -> ModelSpec:
    """`spec` with `flops_per_token` for the trial's own mixture (what the plan and the trainables cost
    with)."""
    from sweeper.data import as_mixture

    return _at_mixture(spec, None if mixture is None else as_mixture(mixture))


@lru_cache(maxsize=512)
def _at_mixture(spec: ModelSpec, weights: tuple[float, float, float] | None) -> ModelSpec:
    return replace(spec, flops_per_token=flops_per_token_at(spec.config, spec.seq_len, weights))


@lru_cache(maxsize=512)
def with_vocab(spec: ModelSpec, vocab_size: int | None) -> ModelSpec:
    """`spec` with `vocab_size` embedding rows (None: unchanged); N, which excludes embeddings, stays."""
    if not vocab_size or vocab_size == spec.config.vocab_size:
        return spec
    return _make_spec(spec.kind, spec.size, replace(spec.config, vocab_size=int(vocab_size)), spec.seq_len)


@cache
def ladder(kind: str, name: str = "tiny") -> tuple[ModelSpec, ...]:
    """Every size of a kind's ladder, ascending in N."""
    if kind not in KINDS:
        raise SweeperInputError("model kind", kind, f"use one of {', '.join(KINDS)}")
    if name not in LADDERS:
        raise SweeperInputError("ladder", name, f"use one of {', '.join(LADDERS)}")
    specs = [_make_spec(kind, size, cfg, t) for size, cfg, t in _ladder_configs(kind, name)]
    return tuple(sorted(specs, key=lambda s: s.n_params))


def get_model_spec(kind: str, size: str) -> ModelSpec:
    if kind not in KINDS:
        raise SweeperInputError("model kind", kind, f"use one of {', '.join(KINDS)}")
    for name in LADDERS:
        for spec in ladder(kind, name):
            if spec.size == size:
                return spec
    allowed = [s.size for name in LADDERS for s in ladder(kind, name)]
    raise SweeperInputError("model size", size, f"use one of {', '.join(allowed)} for kind {kind!r}")


def point_spec(point: dict) -> ModelSpec:
    """The spec a planned point trains: its ladder entry with the point's embedding rows."""
    return with_vocab(get_model_spec(point["kind"], point["size"]), point.get("vocab_size") or None)


def _build(config: TextConfig) -> torch.nn.Module:
    if isinstance(config, LateFusionConfig):
        from models.late_fusion import LateFusionLM

        return LateFusionLM(config)
    if isinstance(config, MoEConfig):
        from models.moe import MoELM

        return MoELM(config)
    from models.early_fusion import DecoderLM

    return DecoderLM(config)


def build_model(spec: ModelSpec) -> torch.nn.Module:
    """A freshly initialised model (seed torch before calling for reproducibility)."""
    return _build(spec.config)
