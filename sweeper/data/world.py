"""A fixed procedural world that pictures and stories talk about: colours, shapes and places for
the images, people with a few facts each, and arithmetic with a rule to discover.

A closed world is learned quickly: the loss that keeps falling with N and D comes from the
generated language (sweeper.data.language). The world is built from a constant seed, so train
and validation text talk about the same people; samples differ by the caller's seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

COLORS = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.8, 0.2),
    "blue": (0.15, 0.3, 0.95),
    "yellow": (0.95, 0.9, 0.1),
    "cyan": (0.1, 0.85, 0.85),
    "purple": (0.6, 0.2, 0.8),
    "white": (0.95, 0.95, 0.95),
    "orange": (1.0, 0.55, 0.05),
}
SHAPES = ("square", "circle", "triangle", "cross")
SIZES = ("small", "big")
PLACES = ("top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right")
JOBS = (
    "baker",
    "pilot",
    "farmer",
    "doctor",
    "singer",
    "sailor",
    "teacher",
    "painter",
    "miner",
    "judge",
    "cook",
    "poet",
    "tailor",
    "guard",
    "clerk",
    "smith",
)
WORLD_SEED = 20250101
N_PEOPLE = 320
N_CITIES = 24


@dataclass(frozen=True)
class Person:
    name: str
    city: str
    job: str
    age: int
    color: str
    shape: str


def _word(rng: np.random.Generator, n_syllables: int) -> str:
    cons, vows = "bdfgklmnprstvz", "aeiou"
    return "".join(cons[rng.integers(len(cons))] + vows[rng.integers(len(vows))] for _ in range(n_syllables))


@lru_cache(maxsize=1)
def world() -> tuple[tuple[Person, ...], tuple[str, ...]]:
    rng = np.random.default_rng(WORLD_SEED)
    cities: list[str] = []
    while len(cities) < N_CITIES:
        w = _word(rng, 3)
        if w not in cities:
            cities.append(w)
    names: list[str] = []
    while len(names) < N_PEOPLE:
        w = _word(rng, int(rng.integers(2, 4)))
        if w not in names and w not in cities:
            names.append(w)
    colors = tuple(COLORS)
    people = tuple(
        Person(
            name=n,
            city=cities[rng.integers(N_CITIES)],
            job=JOBS[rng.integers(len(JOBS))],
            age=int(rng.integers(10, 90)),
            color=colors[rng.integers(len(colors))],
            shape=SHAPES[rng.integers(len(SHAPES))],
        )
        for n in names
    )
    return people, tuple(cities)


def fact_sentences(p: Person) -> list[str]:
    return [
        f"{p.name} lives in {p.city}.",
        f"{p.name} is a {p.job}.",
        f"{p.name} is {p.age} years old.",
        f"{p.name} likes {p.color} {p.shape}s.",
    ]


def arithmetic_sentence(rng: np.random.Generator) -> str:
    a, b = (int(x) for x in rng.integers(0, 30, size=2))
    if rng.random() < 0.5:
        return f"{a} plus {b} is {a + b}."
    a, b = max(a, b), min(a, b)
    return f"{a} minus {b} is {a - b}."
