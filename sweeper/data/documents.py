"""Documents of the three data types, as lists of segments (text or image scene).

- caption: one image followed by its caption and a sentence of free text, as alt text
  often carries (like DFN/COYO/HQITP pairs);
- interleaved: a short story about a person from the world with pictures
  and text that refers to them, before and after, between passages of the
  generated language (like Obelics);
- text: passages of the generated language (sweeper.data.language), with some
  arithmetic (like DCLM).

The generated language carries most of the loss that scales with N and D; captions,
pictures and people add the cross-modal structure an early-fusion model must learn.
"""

from __future__ import annotations

import numpy as np

from sweeper.data.images import Scene, caption, random_scene
from sweeper.data.language import paragraph, sentence
from sweeper.data.world import arithmetic_sentence, fact_sentences, world

TARGETS = ("caption", "interleaved", "text")
Segment = str | Scene  # a str is text; a tuple is an image scene


def caption_doc(rng: np.random.Generator) -> list[Segment]:
    scene = random_scene(rng)
    return [scene, f"{caption(scene)} {sentence(rng)}"]


def _person(rng: np.random.Generator):
    people, _ = world()
    return people[rng.integers(len(people))]


def interleaved_doc(rng: np.random.Generator) -> list[Segment]:
    p = _person(rng)
    facts = fact_sentences(p)
    segs: list[Segment] = [f"{facts[int(rng.integers(3))]} {p.name} likes to draw. "]
    for _ in range(int(rng.integers(1, 4))):  # text after each picture, so a 128-position sequence holds one
        if rng.random() < 0.5:  # favourite thing, named before the image shows it
            scene = random_scene(rng, color=p.color, shape=p.shape)
            segs += [f"{p.name} drew a {p.color} {p.shape}: ", scene, f" it is {scene[0].size}. "]
        else:  # described after the image, as in a caption
            scene = random_scene(rng)
            segs += [f"here is a picture by {p.name}. ", scene, f" it shows {caption(scene)} "]
        segs.append(f"{paragraph(rng, int(rng.integers(1, 3)))} ")
    return segs


def text_doc(rng: np.random.Generator) -> list[Segment]:
    parts = [
        paragraph(rng, int(rng.integers(1, 4))) if rng.random() < 0.85 else arithmetic_sentence(rng)
        for _ in range(int(rng.integers(2, 5)))
    ]
    return [" ".join(parts)]


GENERATORS = {"caption": caption_doc, "interleaved": interleaved_doc, "text": text_doc}
