"""Downstream tasks: multiple-choice items scored as ranked classification (sweeper.train.tasks).

A task is a name, a modality ("text" or "image-text") and items. An item is a context (text, and for an
image-text task an optional image), choices and the index of the right one. Choices are texts, scored as
continuations of the context; or images (`image_match`), where the context text is scored given each
image. An image is an array [C, H, W] (uint8, as decoded files are, or float in [-0.5, 0.5], as
generated ones are) or an ImageRef that makes one when called.

Tasks come from a jsonl file (`load_jsonl_task`) or are generated for the embedded default from the
generators its training data uses, so a model trained on that data can learn them:
- next_word: the word that follows a sentence prefix of the generated language (sweeper.data.language);
- caption_match: the caption of a generated scene among 4 captions;
- image_match: the image of a caption among 4 generated scenes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.config import ImageConfig
from sweeper.data.documents import GENERATORS
from sweeper.data.images import Scene, caption, random_scene, render
from sweeper.data.language import lexicon, sentence
from sweeper.data.packing import ImageRef
from sweeper.errors import SweeperInputError

# Held out: items are drawn from np.random.default_rng([seed, TASK_STREAM, task]). The training stream
# is default_rng([seed, 0]) and validation default_rng([seed, 1, target]) (sweeper.data), so no task item
# is a sample of either stream. Short pieces (a word and its successor, a caption) do recur in any sample
# of the language or the scenes: that is what makes the tasks learnable, as validation data is.
TASK_STREAM = 31
TASK_SEED = 0
# One trial's accuracy has a binomial standard error sqrt(p(1-p)/n), at most 0.5/sqrt(n): n >= 625 keeps
# it <= 2 points. A multiple of N_CHOICES, so every answer position holds exactly a quarter of the items.
N_ITEMS = 640
N_CHOICES = 4
MODALITIES = ("text", "image-text")
# the generated tasks' modalities; every task from a jsonl file is text-only
GENERATED_MODALITY = {"next_word": "text", "caption_match": "image-text", "image_match": "image-text"}
JSONL_FIX = (
    'write one JSON object per line: {"context": "...", "choices": ["...", "...", ...], "answer": 0} '
    "(answer: the index of the right choice)"
)


@dataclass(frozen=True, eq=False)  # eq=False: images are arrays
class Item:
    context: str
    choices: tuple  # str, or images (image_match: the context is scored given each)
    answer: int
    image: object = None  # [C, H, W] array, ImageRef or None

    @property
    def choices_are_images(self) -> bool:
        return not isinstance(self.choices[0], str)


@dataclass(frozen=True, eq=False)
class Task:
    name: str
    modality: str  # "text" or "image-text"
    items: tuple[Item, ...]


def generated_text(data: Mapping | None) -> bool:
    """Whether a trial's text is the generated language (its tasks, and bytes per token, are known)."""
    data = data or {}
    return data.get("source", "generated") == "generated" and not data.get("tokenizer")


def scored_generated(image, data: Mapping | None, generated: bool = True) -> tuple[str, ...]:
    """The generated tasks a trial scores: none unless its text is the generated language; the
    image-text ones only for a model that sees images."""
    if not (generated and generated_text(data)):
        return ()
    return tuple(n for n, m in GENERATED_MODALITY.items() if image is not None or m == "text")


def modality_of(name: str) -> str:
    """A task's modality by its name, as the runs record it (task.<name>.accuracy)."""
    return GENERATED_MODALITY.get(name, "text")


# -- tasks from files ----------------------------------------------------------------------------------
def load_jsonl_task(path: str | Path, name: str | None = None) -> Task:
    """A text task from a jsonl file; a bad line raises SweeperInputError naming file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise SweeperInputError("task file", str(path), "no such file; " + JSONL_FIX)
    items = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():  # blank lines (a trailing newline) are not items
                items.append(_item_from_line(line, f"{path}:{n}"))
    if not items:
        raise SweeperInputError("task file", str(path), "it holds no items; " + JSONL_FIX)
    return Task(name or path.stem, "text", tuple(items))


def _item_from_line(line: str, where: str) -> Item:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SweeperInputError(
            where, line.strip()[:80], f"not valid JSON ({exc.msg}); {JSONL_FIX}"
        ) from None
    if not isinstance(obj, dict):
        raise SweeperInputError(where, obj, f"not a JSON object; {JSONL_FIX}")
    for key in ("context", "choices", "answer"):
        if key not in obj:
            raise SweeperInputError(
                f"{where} {key}", sorted(obj), f"the line has no '{key}' key; {JSONL_FIX}"
            )
    context, choices, answer = obj["context"], obj["choices"], obj["answer"]
    if not isinstance(context, str):
        raise SweeperInputError(f"{where} context", context, "the context must be a string")
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise SweeperInputError(f"{where} choices", choices, "choices must be a list of strings")
    if len(choices) < 2:
        raise SweeperInputError(f"{where} choices", choices, "give at least 2 choices to rank")
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise SweeperInputError(
            f"{where} answer",
            answer,
            f"answer must be the index of the right choice, an integer from 0 to {len(choices) - 1}",
        )
    return Item(context, tuple(choices), answer)


# -- generated tasks -----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)  # drawn once per process (~1 s), however many trials it runs
def generated_tasks(
    image: ImageConfig | None, n_items: int = N_ITEMS, seed: int = TASK_SEED
) -> tuple[Task, ...]:
    """The embedded default's tasks for a model with `image` input geometry (None: text only)."""
    tasks = [next_word_task(n_items, seed)]
    if image is not None:
        tasks += [caption_match_task(image, n_items, seed), image_match_task(image, n_items, seed)]
    return tuple(tasks)


def _rng(seed: int, task: int, *more: int) -> np.random.Generator:
    return np.random.default_rng([seed, TASK_STREAM, task, *more])


def _answers(rng: np.random.Generator, n_items: int) -> np.ndarray:
    """Right-choice positions, each position equally often (n_items a multiple of N_CHOICES): neither a
    bias to a position nor argmax's first-index tie-break can score above chance."""
    return rng.permutation(np.arange(n_items) % N_CHOICES)


def _with_answer(distractors: list, right, position: int) -> tuple:
    return tuple(distractors[:position] + [right] + distractors[position:])


def _next_word(rng: np.random.Generator) -> tuple[str, str]:
    """(a sentence prefix, the word that follows it), drawn as the language's text is."""
    words = sentence(rng).rstrip(".").split(" ")
    k = int(rng.integers(1, len(words) - 1))  # never the last word: a space, not a full stop, follows
    return " ".join(words[:k]), words[k]


def _next_words(rng: np.random.Generator) -> tuple[str, str, list[str]]:
    """(a sentence prefix, its next word, N_CHOICES - 1 distractors).

    Drawn as N_CHOICES (prefix, next word) pairs, kept when their words differ and no word can follow
    another pair's prefix (not one of its last word's successors): the condition is the same for every
    pair, so the right word is exchangeable with the distractors; a model that knows only how frequent or
    long words are is at chance, and exactly one choice can follow the prefix.
    """
    words, _, successors = lexicon()
    rank = {w: i for i, w in enumerate(words)}
    while True:
        pairs = [_next_word(rng) for _ in range(N_CHOICES)]
        nexts = [w for _, w in pairs]
        follow = [{words[s] for s in successors[rank[p.rsplit(" ", 1)[-1]]]} for p, _ in pairs]
        clash = any(w in follow[i] for i in range(N_CHOICES) for j, w in enumerate(nexts) if j != i)
        if len(set(nexts)) == N_CHOICES and not clash:
            return pairs[0][0], nexts[0], nexts[1:]


def next_word_task(n_items: int = N_ITEMS, seed: int = TASK_SEED) -> Task:
    """The next word of a generated sentence among N_CHOICES words (see _next_words). A choice is
    " word ": the trailing space ends the word, or a word that begins another ("ba", "bako") would rank
    with it."""
    rng = _rng(seed, 0)
    items = []
    for position in _answers(rng, n_items):
        context, right, distractors = _next_words(rng)
        choices = _with_answer([f" {w} " for w in distractors], f" {right} ", int(position))
        items.append(Item(context, choices, int(position)))
    return Task("next_word", "text", tuple(items))


def _scenes(rng: np.random.Generator) -> list[Scene]:
    """N_CHOICES scenes with distinct captions, drawn independently: the right one is no likelier a
    caption than the others, so a model that does not read the image is at chance."""
    scenes: list[Scene] = []
    while len(scenes) < N_CHOICES:
        s = random_scene(rng)
        if caption(s) not in {caption(t) for t in scenes}:
            scenes.append(s)
    return scenes


def _picture(scene: Scene, image: ImageConfig, where: str, seed: int, *key: int) -> ImageRef:
    """The scene's pixels, rendered when scored (items stay small at any resolution), with noise of their
    own stream: the same pixels every call."""
    render_ = functools.partial(render, scene, image)
    return ImageRef(where, lambda: render_(_rng(seed, *key)))


def caption_match_task(image: ImageConfig, n_items: int = N_ITEMS, seed: int = TASK_SEED) -> Task:
    """A generated scene's image; the choices are its caption and those of N_CHOICES - 1 other scenes.
    The caption follows the image directly, as in the training data's caption documents."""
    rng = _rng(seed, 1)
    items = []
    for i, position in enumerate(_answers(rng, n_items)):
        right, *others = _scenes(rng)
        choices = _with_answer([caption(s) for s in others], caption(right), int(position))
        items.append(
            Item(
                "",
                choices,
                int(position),
                image=_picture(right, image, f"caption_match item {i}", seed, 1, i),
            )
        )
    return Task("caption_match", "image-text", tuple(items))


def image_match_task(image: ImageConfig, n_items: int = N_ITEMS, seed: int = TASK_SEED) -> Task:
    """A caption; the choices are the image of its scene and of N_CHOICES - 1 other scenes. Scored as the
    caption's log-likelihood given each image (the model generates text, not images)."""
    rng = _rng(seed, 2)
    items = []
    for i, position in enumerate(_answers(rng, n_items)):
        right, *others = _scenes(rng)
        scenes = _with_answer(others, right, int(position))
        choices = tuple(
            _picture(s, image, f"image_match item {i} choice {j}", seed, 2, i, j)
            for j, s in enumerate(scenes)
        )
        items.append(Item(caption(right), choices, int(position)))
    return Task("image_match", "image-text", tuple(items))


def target_texts(target: str, n_docs: int = 256, seed: int = TASK_SEED) -> list[str]:
    """The text of `n_docs` generated documents of a target (caption, interleaved, text): what its
    validation loss scores, to measure bytes per token (sweeper.train.tasks.bytes_per_token)."""
    rng = _rng(seed, 99)
    return [seg for _ in range(n_docs) for seg in GENERATORS[target](rng) if isinstance(seg, str)]
