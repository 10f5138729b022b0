"""Late fusion: a ViT-style vision encoder + linear projection + the decoder.

The encoder sees each image alone, bidirectionally, with learned position
embeddings over its patches (CLIP-style); its outputs are projected to the
decoder width and take the image's positions in the decoder sequence. Its
parameters live under `vision.` so the optimiser can give them the paper's
smaller learning rate (vision_lr_mult, 0.1).
"""

from __future__ import annotations

import torch
from torch import nn

from models.config import BlockStack, ImageConfig, LateFusionConfig
from models.early_fusion import DecoderLM
from models.layers import Block, init_weights


class VisionEncoder(nn.Module):
    def __init__(self, cfg: BlockStack, image: ImageConfig, out_dim: int):
        super().__init__()
        self.n_patches = image.n_patches
        self.patch_embed = nn.Linear(image.patch_dim, cfg.dim, bias=False)
        self.pos_embed = nn.Parameter(torch.zeros(image.n_patches, cfg.dim))
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.dim, eps=cfg.norm_eps)
        self.proj = nn.Linear(cfg.dim, out_dim, bias=False)
        init_weights(self, cfg.n_layers)
        nn.init.normal_(self.pos_embed, std=0.02)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """[M, patch_dim] (whole images, in order) -> [M, out_dim]."""
        x = self.patch_embed(patches).view(-1, self.n_patches, self.pos_embed.shape[1]) + self.pos_embed
        ctx: dict = {}
        for layer in self.layers:
            x = layer(x, None, None, ctx)  # mask None: every patch sees its whole image
        return self.proj(self.norm(x)).flatten(0, 1)  # no images: [0, out_dim]


class LateFusionLM(DecoderLM):
    cfg: LateFusionConfig

    def build_image_input(self, image: ImageConfig) -> None:
        self.vision = VisionEncoder(self.cfg.encoder, image, self.cfg.dim)

    def apply_init(self) -> None:
        # The encoder initialised itself for its own depth; only init the rest.
        for name, module in self.named_children():
            if name != "vision":
                init_weights(module, self.cfg.n_layers)

    def embed_images(self, patches: torch.Tensor) -> torch.Tensor:
        return self.vision(patches)
