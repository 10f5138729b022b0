"""The decoder shared by every kind, and early fusion itself.

`DecoderLM` is a dense text LM when its config has no `image`; with one it
is the early-fusion model: each image patch (continuous pixels, no image
tokenizer) is linearly projected to the model width and takes a position in
the same sequence as the text. Only text positions are predicted: the loss
is next-token cross-entropy on positions whose target is a text token, and
the output head is applied to those positions only (so image positions cost
no vocabulary matmul; models.flops counts exactly that).

Late fusion and MoE subclass it and override `embed_images` / `make_ffn`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from models.config import TextConfig
from models.layers import Block, init_weights, multimodal_mask, rope_tables

IGNORE = -100  # target value of positions that are not scored (image patches, padding)


@dataclass
class ModelOutput:
    loss: torch.Tensor  # training objective: lm_loss + aux_loss_weight * aux_loss
    lm_loss: torch.Tensor  # mean next-token cross-entropy over scored positions
    aux_loss: torch.Tensor  # MoE load-balancing loss (0 for dense kinds)
    n_targets: int  # number of scored positions (to token-weight averages)
    routing: list = field(default_factory=list)  # MoE: per layer (expert index, is_image) tensors


class DecoderLM(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        image = getattr(cfg, "image", None)
        self.has_image_input = image is not None
        if image is not None:
            self.build_image_input(image)
        self.layers = nn.ModuleList(Block(cfg, ffn=self.make_ffn(i)) for i in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.dim, eps=cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.apply_init()

    # -- hooks for subclasses -------------------------------------------------
    def build_image_input(self, image) -> None:
        self.patch_embed = nn.Linear(image.patch_dim, self.cfg.dim, bias=False)

    def make_ffn(self, layer: int) -> nn.Module | None:
        return None  # the default SwiGLU

    def embed_images(self, patches: torch.Tensor) -> torch.Tensor:
        """[M, patch_dim] patches (row-major over image positions) -> [M, dim]."""
        return self.patch_embed(patches)

    def apply_init(self) -> None:
        init_weights(self, self.cfg.n_layers)

    # -- forward ----------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> ModelOutput:
        tokens, targets = batch["tokens"], batch["targets"]
        h = self.tok_embeddings(tokens)
        is_image = batch.get("is_image")
        has_images = self.has_image_input and is_image is not None and bool(is_image.any())
        if has_images:
            h = h.index_put((is_image,), self.embed_images(batch["patches"]).to(h.dtype))
            mask = multimodal_mask(batch["segment"])
        else:
            mask = "causal"
        t = tokens.shape[1]
        rope = rope_tables(t, self.cfg.head_dim, self.cfg.rope_theta, tokens.device)
        ctx = {
            "is_image": is_image if has_images else torch.zeros_like(tokens, dtype=torch.bool),
            "aux": [],
            "routing": [],
        }
        for layer in self.layers:
            h = layer(h, mask, rope, ctx)
        scored = targets != IGNORE
        logits = self.output(self.norm(h[scored]))
        lm_loss = F.cross_entropy(logits.float(), targets[scored])
        aux = torch.stack(ctx["aux"]).mean() if ctx["aux"] else lm_loss.new_zeros(())
        weight = getattr(self.cfg, "aux_loss_weight", 0.0)
        return ModelOutput(
            loss=lm_loss + weight * aux,
            lm_loss=lm_loss,
            aux_loss=aux,
            n_targets=int(scored.sum()),
            routing=ctx["routing"],
        )
