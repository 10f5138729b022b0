"""A generated language whose loss keeps falling as a power law in model size and in data.

Why not a small closed world: a model learns a few hundred facts quickly, and past that more
parameters or more tokens buy nothing, so isoFLOP minima sit at the smallest sizes. Here the
text is a walk through a lexicon of LEXICON_SIZE invented words: a sentence starts at a word
drawn with p_k ~ 1/k, and every word has three possible next words, themselves drawn so. Word
frequencies in the text fall as a power law of rank (slope -1.5, tests/data/test_language.py). To
predict it, a model must learn each word's spelling and its successors, word by word, most
frequent first. A bigger model stores more of them; more tokens show it rarer ones. That is the
long tail of "quanta" behind neural scaling laws (Michaud et al. 2023), with an entropy rate
(the irreducible loss E) fixed by the successor probabilities and sentence breaks.

The lexicon and the successor table come from a constant seed, so train and validation text
share the language; samples differ by the caller's generator.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

LANGUAGE_SEED = 20261203
LEXICON_SIZE = 8000
ZIPF_EXPONENT = 1.0
SUCCESSOR_PROBS = (0.6, 0.3, 0.1)  # of a word's 1st, 2nd and 3rd successor
SENTENCE_WORDS = (5, 13)  # words per sentence: uniform in [low, high)
CONSONANTS, VOWELS = "bdfgklmnprstvz", "aeiou"


@lru_cache(maxsize=1)
def lexicon() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(words by rank, cumulative Zipf probabilities, successor table [word, k] of word ranks).

    Frequent words are short, as in real text: 1 syllable to rank 12, 2 to ~170, 3 to ~2,150, then 4.
    """
    rng = np.random.default_rng(LANGUAGE_SEED)
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < LEXICON_SIZE:
        n_syllables = 1 + min(3, int(np.log10(len(words) + 1) * 0.9))
        w = "".join(
            CONSONANTS[rng.integers(len(CONSONANTS))] + VOWELS[rng.integers(len(VOWELS))]
            for _ in range(n_syllables)
        )
        if w not in seen:
            seen.add(w)
            words.append(w)
    p = np.arange(1, LEXICON_SIZE + 1, dtype=float) ** -ZIPF_EXPONENT
    cdf = np.cumsum(p / p.sum())
    successors = _draw(rng, cdf, (LEXICON_SIZE, len(SUCCESSOR_PROBS)))
    return tuple(words), cdf, successors


def _draw(rng: np.random.Generator, cdf: np.ndarray, shape) -> np.ndarray:
    """Indices drawn from a cumulative distribution (clamped: its last entry may round below 1)."""
    return np.minimum(np.searchsorted(cdf, rng.random(shape)), len(cdf) - 1)


def sentence(rng: np.random.Generator) -> str:
    """One sentence: a Zipfian first word, then a walk through the successor table."""
    words, cdf, successors = lexicon()
    n = int(rng.integers(*SENTENCE_WORDS))
    picks = _draw(rng, np.cumsum(SUCCESSOR_PROBS), n - 1)
    w = int(_draw(rng, cdf, ()))
    out = [words[w]]
    for k in picks:
        w = int(successors[w, k])
        out.append(words[w])
    return " ".join(out) + "."


def paragraph(rng: np.random.Generator, n_sentences: int) -> str:
    return " ".join(sentence(rng) for _ in range(n_sentences))
