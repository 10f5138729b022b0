"""Ranked classification on models whose answers are known: accuracy 1 or 0 and the exact loss, whatever
the batching; the logits read off the output head agree with each sequence's own loss on every model
kind; and bits per byte on known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.early_fusion import IGNORE, ModelOutput
from models.registry import build_model, get_model_spec
from sweeper.data.bpe import train_bpe
from sweeper.data.tasks import (
    Item,
    Task,
    caption_match_task,
    image_match_task,
    next_word_task,
    target_texts,
)
from sweeper.data.tokenizer import CharTokenizer
from sweeper.train.tasks import (
    _batch,
    _one_sequence,
    _requests,
    _sequence_scores,
    bits_per_byte,
    bytes_per_token,
    evaluate_tasks,
    score_task,
    task_metrics,
)

TOK = CharTokenizer()
V = TOK.vocab_size
PEAK = 10.0  # the logit of the one token the model predicts; every other token's is 0
RIGHT = math.log1p((V - 1) * math.exp(-PEAK))  # nats to predict the token it predicts
WRONG = math.log(math.exp(PEAK) + V - 1)  # nats to predict any other


class NextChar(nn.Module):
    """Predicts the next character code (ids are consecutive for ASCII: "b" follows "a") with logit PEAK,
    through an output head applied to the scored positions, as DecoderLM does."""

    def __init__(self):
        super().__init__()
        self.tok_embeddings = nn.Embedding(V, V, _weight=torch.eye(V))
        self.output = nn.Linear(V, V, bias=False)
        self.output.weight.data = PEAK * torch.roll(torch.eye(V), 1, dims=0)  # input i -> logit of i + 1

    def forward(self, batch):
        scored = batch["targets"] != IGNORE
        logits = self.output(self.tok_embeddings(batch["tokens"])[scored])
        loss = F.cross_entropy(logits, batch["targets"][scored])
        return ModelOutput(loss=loss, lm_loss=loss, aux_loss=loss.new_zeros(()), n_targets=int(scored.sum()))


class Headless(nn.Module):
    """The same model without an `output` attribute: scored one sequence at a time from its loss."""

    def __init__(self):
        super().__init__()
        self.inner = NextChar()

    def forward(self, batch):
        return self.inner(batch)


def _task(answer: int) -> Task:
    # after "ab" the model continues "cdef...": "xyz" misses its first character, "cdx" its third
    items = [
        Item("ab", ("cde", "xyz", "cdx"), answer),
        Item("klmn", ("opq", "opqrsz", "zz"), 0 if answer == 0 else 2),
    ]
    return Task("known", "text", tuple(items * 5))


@pytest.mark.parametrize("model_type", [NextChar, Headless])
@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_accuracy_is_one_when_the_answer_is_what_the_model_predicts(model_type, batch_size):
    r = score_task(model_type(), _task(0), TOK, batch_size=batch_size)
    assert r["accuracy"] == r["accuracy_norm"] == 1.0
    assert r["accuracy_stderr"] == 0.0 and r["n_items"] == 10
    assert r["n_tokens"] == r["n_bytes"] == 5 * (3 + 3)
    assert r["loss"] == pytest.approx(RIGHT, rel=1e-4)


@pytest.mark.parametrize("batch_size", [1, 5])
def test_accuracy_is_zero_and_the_loss_is_known_when_the_answer_differs(batch_size):
    r = score_task(NextChar(), _task(1), TOK, batch_size=batch_size)
    assert r["accuracy"] == r["accuracy_norm"] == 0.0
    # "xyz" after "ab": x is a miss, y and z follow; "zz" after "klmn": both miss (z does not follow z)
    expected = (WRONG + 2 * RIGHT + 2 * WRONG) / 5
    assert r["loss"] == pytest.approx(expected, rel=1e-6)
    assert r["bpb"] == pytest.approx(expected / math.log(2), rel=1e-6)  # one byte per character token


def test_a_half_right_task_has_the_binomial_standard_error():
    items = [Item("ab", ("cde", "xyz"), k % 2) for k in range(40)]
    r = score_task(NextChar(), Task("half", "text", tuple(items)), TOK)
    assert r["accuracy"] == 0.5
    assert r["accuracy_stderr"] == pytest.approx(math.sqrt(0.25 / 39))
    # the classification's own cross-entropy: -log of the right choice's share, half the items each way
    right, wrong = -3 * RIGHT, -(WRONG + 2 * RIGHT)
    both = float(np.logaddexp(right, wrong))
    assert r["choice_loss"] == pytest.approx(((both - right) + (both - wrong)) / 2, rel=1e-6)


def test_a_context_longer_than_the_model_loses_its_oldest_tokens():
    item = Item("x" * 50 + "ab", ("cde", "xyz"), 0)
    (tokens, start, _, _), _ = _requests(Task("long", "text", (item,)), TOK, 0, max_len=8)
    assert len(tokens) == 8 and tokens[0] == TOK.bos_id
    assert TOK.decode(tokens[1:start]) == "xxab" and TOK.decode(tokens[start:]) == "cde"
    assert score_task(NextChar(), Task("long", "text", (item,)), TOK, max_len=8)["accuracy"] == 1.0


def test_scoring_leaves_the_model_in_its_mode():
    model = NextChar().train()
    score_task(model, _task(0), TOK)
    assert model.training
    assert score_task(model.eval(), _task(0), TOK) and not model.training


@pytest.mark.parametrize("kind", ["early_fusion", "late_fusion", "moe"])
def test_the_head_logits_give_each_sequences_own_loss(kind):
    """A mixed batch of text-only and image sequences of different lengths: the sums read off the output
    head are what each sequence alone gives as its loss x scored targets."""
    spec = get_model_spec(kind, "tiny-1")
    image = spec.config.image
    torch.manual_seed(0)
    model = build_model(spec).eval()
    reqs = []
    for task in (next_word_task(4), caption_match_task(image, 4), image_match_task(image, 4)):
        reqs += _requests(task, TOK, image.n_patches, spec.seq_len)[:6]
    batch = _batch(reqs, TOK.pad_id, image)
    with torch.no_grad():
        fast = _sequence_scores(model, batch)
        slow = [_one_sequence(model, _batch([r], TOK.pad_id, image)) for r in reqs]
    assert torch.allclose(fast, torch.stack(slow), rtol=1e-4, atol=1e-3)


def test_a_text_model_is_scored_on_text_tasks_only():
    spec = get_model_spec("dense_text", "tiny-1")
    model = build_model(spec)
    tasks = (next_word_task(8), caption_match_task(get_model_spec("early_fusion", "tiny-1").config.image, 8))
    results = evaluate_tasks(model, tasks, TOK, image=None, max_len=spec.seq_len)
    assert list(results) == ["next_word"] and results["next_word"]["n_items"] == 8
    flat = task_metrics(results)  # the child run's metric names
    assert flat["task.next_word.accuracy"] == results["next_word"]["accuracy"]
    assert flat["task.next_word.n_items"] == 8 and not any("caption_match" in k for k in flat)
    with pytest.raises(ValueError, match="takes none"):
        score_task(model, tasks[1], TOK)


def test_bits_per_byte_of_known_cases():
    assert bits_per_byte(math.log(2), 10, 10) == pytest.approx(1.0)
    assert bits_per_byte(2.0, 3, 6) == pytest.approx(2.0 * 3 / (6 * math.log(2)))
    assert bits_per_byte(1.5, 1, 4.0) == pytest.approx(bits_per_byte(1.5, 100, 400))  # only the ratio


def test_bytes_per_token_of_a_tokenizer():
    assert bytes_per_token(TOK, ["abc", "de f"]) == 1.0  # one character, one byte, one token
    assert bytes_per_token(TOK, ["é"]) == 2.0  # two UTF-8 bytes, one (unknown) token
    texts = target_texts("text", 8)  # the generated text target, as its validation loss scores it
    assert texts == target_texts("text", 8) and sum(map(len, texts)) > 1000
    assert bytes_per_token(TOK, texts) == 1.0  # so its bits per byte are its loss / ln 2
    texts = ["the cat sat on the mat. " * 4] * 50
    bpe = train_bpe(texts, 300)  # a `tokenizers` Tokenizer: encode gives an Encoding
    ratio = bytes_per_token(bpe, texts)
    assert ratio > 2.0
    n_bytes = sum(len(t.encode()) for t in texts)
    n_tokens = sum(len(bpe.encode(t).ids) for t in texts)
    assert ratio == pytest.approx(n_bytes / n_tokens)
