"""Documents of the three data types, as lists of segments (text or image scene).

- caption: one image followed by its caption (like DFN/COYO/HQITP pairs);
- interleaved: a short story about a person from the world with pictures
  and text that refers to them, before and after (like Obelics);
- text: world facts, animal sentences and arithmetic (like DCLM).
"""

from __future__ import annotations

import numpy as np

from sweeper.data.images import Scene, caption, random_scene
from sweeper.data.world import (
    animal_sentence,
    arithmetic_sentence,
    fact_sentences,
    world,
)

TARGETS = ("caption", "interleaved", "text")
Segment = str | Scene  # a str is text; a tuple is an image scene


def caption_doc(rng: np.random.Generator) -> list[Segment]:
    scene = random_scene(rng)
    return [scene, caption(scene)]


def _person(rng: np.random.Generator):
    people, _ = world()
    return people[rng.integers(len(people))]


def interleaved_doc(rng: np.random.Generator) -> list[Segment]:
    p = _person(rng)
    facts = fact_sentences(p)
    segs: list[Segment] = [f"{facts[int(rng.integers(3))]} {p.name} likes to draw. "]
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.5:  # favourite thing, named before the image shows it
            scene = random_scene(rng, color=p.color, shape=p.shape)
            segs += [f"{p.name} drew a {p.color} {p.shape}: ", scene, f" it is {scene[0].size}. "]
        else:  # described after the image, as in a caption
            scene = random_scene(rng)
            segs += [f"here is a picture by {p.name}. ", scene, f" it shows {caption(scene)} "]
    return segs


def text_doc(rng: np.random.Generator) -> list[Segment]:
    people, _ = world()
    sentences: list[str] = []
    for _ in range(int(rng.integers(3, 8))):
        u = rng.random()
        if u < 0.5:
            facts = fact_sentences(people[rng.integers(len(people))])
            order = rng.permutation(len(facts))[: int(rng.integers(1, 4))]
            sentences += [facts[i] for i in order]
        elif u < 0.75:
            sentences.append(animal_sentence(rng))
        else:
            sentences.append(arithmetic_sentence(rng))
    return [" ".join(sentences)]


GENERATORS = {"caption": caption_doc, "interleaved": interleaved_doc, "text": text_doc}
