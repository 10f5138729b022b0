"""Downstream tasks: jsonl files refused line by line, naming what to fix; generated tasks deterministic,
held out, large enough, balanced over answer positions, right about their answers, at chance for a
model that does not know the language or read the images, and for a freshly initialised model."""

from __future__ import annotations

import collections
import json
import math

import numpy as np
import pytest
import torch

import sweeper.data
from models.registry import TINY_IMAGE, build_model, get_model_spec
from sweeper.data.language import lexicon, paragraph
from sweeper.data.tasks import (
    N_CHOICES,
    N_ITEMS,
    TASK_STREAM,
    caption_match_task,
    generated_tasks,
    image_match_task,
    load_jsonl_task,
    modality_of,
    next_word_task,
)
from sweeper.data.tokenizer import CharTokenizer
from sweeper.data.world import COLORS
from sweeper.errors import SweeperInputError

GOOD = {"context": "the sky is", "choices": [" blue", " green"], "answer": 0}


def _write(tmp_path, lines: list[str]):
    path = tmp_path / "quiz.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_jsonl_task_loads_one_item_a_line(tmp_path):
    path = _write(
        tmp_path, [json.dumps(GOOD), "", json.dumps({**GOOD, "answer": 1, "choices": ["a", "b", "c"]})]
    )
    task = load_jsonl_task(path)
    assert (task.name, task.modality, len(task.items)) == ("quiz", "text", 2)
    assert task.items[1].choices == ("a", "b", "c") and task.items[1].answer == 1
    assert load_jsonl_task(path, "other").name == "other"


@pytest.mark.parametrize(
    "bad, field, value",
    [
        ('{"context": "x", "answer": 0', "", """'{"context": "x", "answer": 0'"""),  # not valid JSON
        (json.dumps({"context": "x", "choices": ["a", "b"]}), " answer", "['choices', 'context']"),  # no key
        (json.dumps({**GOOD, "answer": 2}), " answer", "2"),  # out of range
        (json.dumps({**GOOD, "answer": -1}), " answer", "-1"),
        (json.dumps({**GOOD, "answer": "0"}), " answer", "'0'"),  # not an integer
        (json.dumps({**GOOD, "choices": [" blue"]}), " choices", "[' blue']"),  # fewer than 2
        (json.dumps({**GOOD, "choices": "blue"}), " choices", "'blue'"),  # not a list
        (json.dumps({**GOOD, "context": 3}), " context", "3"),
        ("[1, 2]", "", "[1, 2]"),  # not an object
    ],
)
def test_a_bad_jsonl_line_is_named_with_its_field_value_and_fix(tmp_path, bad, field, value):
    path = _write(tmp_path, [json.dumps(GOOD), json.dumps(GOOD), bad])
    with pytest.raises(SweeperInputError) as err:
        load_jsonl_task(path)
    message = str(err.value)
    assert message.startswith(f"{path}:3{field}: got "), message  # the file, the line, the field
    assert f": got {value}; " in message and len(message.split("; ", 1)[1]) > 20  # the value, then the fix


def test_a_missing_or_empty_jsonl_file_is_refused(tmp_path):
    with pytest.raises(SweeperInputError, match="no such file"):
        load_jsonl_task(tmp_path / "none.jsonl")
    with pytest.raises(SweeperInputError, match="no items"):
        load_jsonl_task(_write(tmp_path, [""]))


def _same(a, b) -> bool:
    def pixels(x):
        return x() if callable(x) else x

    def same_value(x, y):
        if x is None or isinstance(x, str):
            return x == y
        return np.array_equal(pixels(x), pixels(y))

    return all(
        x.context == y.context
        and x.answer == y.answer
        and same_value(x.image, y.image)
        and all(same_value(c, d) for c, d in zip(x.choices, y.choices, strict=True))
        for x, y in zip(a.items, b.items, strict=True)
    )


def test_generated_tasks_are_deterministic_and_follow_the_seed():
    for make in (next_word_task, lambda n, seed=0: caption_match_task(TINY_IMAGE, n, seed)):
        assert _same(make(40), make(40))
        assert not _same(make(40), make(40, seed=1))
    assert _same(image_match_task(TINY_IMAGE, 8), image_match_task(TINY_IMAGE, 8))
    assert [t.name for t in generated_tasks(None)] == ["next_word"]
    # the report reads a task's modality back from its name alone
    assert all(modality_of(t.name) == t.modality for t in generated_tasks(TINY_IMAGE, n_items=8))
    assert {t.modality for t in generated_tasks(TINY_IMAGE, n_items=8)} == {"text", "image-text"}


def test_task_items_come_from_a_stream_no_training_or_validation_data_uses():
    assert TASK_STREAM not in (sweeper.data._TRAIN_STREAM, sweeper.data._VALIDATION_STREAM)


def test_generated_tasks_are_large_balanced_and_have_four_distinct_choices():
    assert 0.5 / math.sqrt(N_ITEMS) <= 0.02  # one trial's accuracy to 2 points (binomial, worst case)
    tasks = generated_tasks(TINY_IMAGE)
    assert [(t.name, t.modality) for t in tasks] == [
        ("next_word", "text"),
        ("caption_match", "image-text"),
        ("image_match", "image-text"),
    ]
    for task in tasks:
        assert len(task.items) == N_ITEMS
        assert all(len(it.choices) == N_CHOICES for it in task.items)
        # every position is the answer equally often: a positional bias scores exactly chance
        assert collections.Counter(it.answer for it in task.items) == {k: N_ITEMS // 4 for k in range(4)}
    for it in tasks[0].items + tasks[1].items:
        assert len(set(it.choices)) == N_CHOICES


def test_the_right_next_word_is_the_only_choice_that_can_follow():
    words, _, successors = lexicon()
    rank = {w: k for k, w in enumerate(words)}
    for it in next_word_task(200).items:
        follow = {words[s] for s in successors[rank[it.context.split()[-1]]]}
        assert [c.strip() in follow for c in it.choices] == [k == it.answer for k in range(N_CHOICES)]
        assert all(c.startswith(" ") and c.endswith(" ") for c in it.choices)


def _colors_in(pixels: np.ndarray) -> set[str]:
    rgb = {tuple(p) for p in (pixels.astype(np.float64) + 0.5).reshape(3, -1).T.round(4).tolist()}
    return {name for name, value in COLORS.items() if tuple(round(v, 4) for v in value) in rgb}


def test_the_right_caption_and_image_show_the_same_scene():
    for it in caption_match_task(TINY_IMAGE, 64).items:
        named = {w for w in it.choices[it.answer].split() if w in COLORS}
        assert named <= _colors_in(it.image())
    for it in image_match_task(TINY_IMAGE, 64).items:
        named = {w for w in it.context.split() if w in COLORS}
        assert named <= _colors_in(it.choices[it.answer]())
        assert it.choices[it.answer]().shape == (3, TINY_IMAGE.image_size, TINY_IMAGE.image_size)


def _at_chance(accuracy: float, n: int = N_ITEMS) -> bool:
    return abs(accuracy - 0.25) < 4 * math.sqrt(0.25 * 0.75 / n)  # within 4 standard errors


def _accuracy(task, score) -> float:
    return float(np.mean([np.argmax([score(c) for c in it.choices]) == it.answer for it in task.items]))


def test_knowing_only_word_frequencies_or_lengths_is_chance():
    counts = collections.Counter(paragraph(np.random.default_rng(5), 20_000).replace(".", "").split())
    words = next_word_task()
    assert _at_chance(_accuracy(words, lambda c: counts[c.strip()]))  # the most frequent word
    assert _at_chance(_accuracy(words, lambda c: -counts[c.strip()]))
    assert _at_chance(_accuracy(words, len)) and _at_chance(_accuracy(words, lambda c: -len(c)))
    captions = caption_match_task(TINY_IMAGE)
    assert _at_chance(_accuracy(captions, len)) and _at_chance(_accuracy(captions, lambda c: -len(c)))


def test_a_freshly_initialised_model_scores_near_chance():
    from sweeper.train.tasks import evaluate_tasks

    spec = get_model_spec("early_fusion", "tiny-1")
    torch.manual_seed(0)
    image = spec.config.image
    results = evaluate_tasks(
        build_model(spec), generated_tasks(image), CharTokenizer(), image=image, max_len=spec.seq_len
    )
    assert list(results) == ["next_word", "caption_match", "image_match"]
    for name, r in results.items():
        assert r["n_items"] == N_ITEMS
        assert _at_chance(r["accuracy"]) and _at_chance(r["accuracy_norm"]), (name, r)
        assert r["loss"] == pytest.approx(math.log(spec.config.vocab_size), rel=0.1)  # uniform over the ids


def test_the_plan_refuses_a_task_file_with_a_bad_line_naming_it(tmp_path, capsys):
    from sweeper.cli import main

    path = tmp_path / "quiz.jsonl"
    good = json.dumps({"context": "2 + 2 =", "choices": [" 4", " 5"], "answer": 0})
    path.write_text(good + "\n" + good + "\n" + json.dumps({"context": "x", "choices": [" a"], "answer": 0}))
    assert main(["plan", "tiny", "--set", f"tasks.files.quiz={path}"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3" in err and "choices" in err
    assert main(["plan", "tiny", "--set", f"tasks.files.quiz={tmp_path / 'none.jsonl'}"]) == 2
    assert "tasks.files.quiz" in capsys.readouterr().err
