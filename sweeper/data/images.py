"""Procedural images: one or two coloured shapes on a noisy background.

A scene is plain data (what is where); rendering turns it into pixels at any
resolution, so the tiny ladder (24 px) and the paper ladder (224 px) describe
the same scenes. Captions are a function of the scene, so caption loss can
only fall below the text prior by reading the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.config import ImageConfig
from sweeper.data.world import COLORS, PLACES, SHAPES, SIZES


@dataclass(frozen=True)
class Shape:
    color: str
    shape: str
    size: str
    place: str

    def describe(self) -> str:
        where = "in the center" if self.place == "center" else f"at the {self.place}"
        return f"a {self.size} {self.color} {self.shape} {where}"


Scene = tuple[Shape, ...]


def random_scene(rng: np.random.Generator, *, color: str | None = None, shape: str | None = None) -> Scene:
    n = 1 if rng.random() < 0.6 else 2
    places = rng.choice(len(PLACES), size=n, replace=False)
    colors = tuple(COLORS)
    objs = []
    for i, p in enumerate(places):
        c = color if (i == 0 and color) else colors[rng.integers(len(colors))]
        s = shape if (i == 0 and shape) else SHAPES[rng.integers(len(SHAPES))]
        objs.append(Shape(color=c, shape=s, size=SIZES[rng.integers(2)], place=PLACES[int(p)]))
    return tuple(objs)


def caption(scene: Scene) -> str:
    return " and ".join(o.describe() for o in scene) + "."


def _shape_mask(kind: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    if kind == "square":
        return (np.abs(dx) <= 0.8 * r) & (np.abs(dy) <= 0.8 * r)
    if kind == "circle":
        return dx**2 + dy**2 <= r**2
    if kind == "triangle":  # apex up: wider towards the bottom
        return (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2)
    bar = r / 3  # cross
    return ((np.abs(dx) <= bar) & (np.abs(dy) <= r)) | ((np.abs(dy) <= bar) & (np.abs(dx) <= r))


def render(scene: Scene, image: ImageConfig, rng: np.random.Generator) -> np.ndarray:
    """Pixels [C, H, W] in about [-0.5, 0.5]."""
    s = image.image_size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    pix = rng.normal(0.0, 0.08, size=(3, s, s)).astype(np.float32)
    cell = s / 3
    for o in scene:
        k = PLACES.index(o.place)
        cy, cx = (k // 3 + 0.5) * cell, (k % 3 + 0.5) * cell
        r = (0.46 if o.size == "big" else 0.28) * cell
        m = _shape_mask(o.shape, xx - cx, yy - cy, r)
        for ch, v in enumerate(COLORS[o.color]):
            pix[ch][m] = v
    if image.channels == 1:
        pix = pix.mean(axis=0, keepdims=True)
    return pix - 0.5


def patchify(pix: np.ndarray, patch: int) -> np.ndarray:
    """[C, H, W] -> [n_patches, C*patch*patch], patches in row-major order."""
    c, h, w = pix.shape
    g = pix.reshape(c, h // patch, patch, w // patch, patch)
    return g.transpose(1, 3, 0, 2, 4).reshape((h // patch) * (w // patch), c * patch * patch)
