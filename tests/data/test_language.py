"""The generated language: Zipfian word frequencies, and each word followed only by its successors."""

import collections

import numpy as np

from sweeper.data.language import LEXICON_SIZE, SUCCESSOR_PROBS, lexicon, paragraph


def _words(n_sentences: int, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [s.split() for s in paragraph(rng, n_sentences).rstrip(".").split(". ")]


def test_word_frequencies_fall_as_a_power_law_of_rank():
    counts = collections.Counter(w for sent in _words(20_000) for w in sent)
    freq = np.sort(np.fromiter(counts.values(), float))[::-1]
    ranks = np.arange(1, len(freq) + 1)
    band = (ranks >= 10) & (ranks <= 1000)  # above the head's loops and below the unseen tail
    slope = np.polyfit(np.log(ranks[band]), np.log(freq[band]), 1)[0]
    assert -2.0 < slope < -1.0, slope  # measured -1.47: the walk favours words many others lead to
    assert len(counts) > LEXICON_SIZE // 4  # a long tail: thousands of distinct words, not a closed world


def test_a_word_is_only_ever_followed_by_its_successors():
    words, _, successors = lexicon()
    rank = {w: k for k, w in enumerate(words)}
    pairs = [(rank[a], rank[b]) for sent in _words(2_000, seed=1) for a, b in zip(sent, sent[1:])]
    assert len(pairs) > 10_000
    assert all(b in successors[a] for a, b in pairs)
    first = sum(b == successors[a, 0] for a, b in pairs) / len(pairs)
    assert abs(first - SUCCESSOR_PROBS[0]) < 0.05  # duplicates in a row can only raise it a little


def test_the_language_is_fixed_and_samples_follow_the_seed():
    assert lexicon() is lexicon()
    assert _words(50, seed=3) == _words(50, seed=3) != _words(50, seed=4)
