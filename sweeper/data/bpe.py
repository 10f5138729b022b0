"""Hugging Face `tokenizers` files: train a byte-level BPE from a corpus, or load a `tokenizer.json`.

Byte-level, as GPT-2 and most LLM tokenizers are: every string encodes (no unknown token), so a
corpus never fails mid-sweep on a character the training sample did not contain. The vocabulary
size is the trainer's target, at least the 256 byte symbols plus the specials.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from sweeper.errors import SweeperInputError

SPECIALS = ("<|pad|>", "<|endoftext|>")
EOS = "<|endoftext|>"
MIN_VOCAB = 256 + len(SPECIALS)  # the byte alphabet and the specials


def train_bpe(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE of `vocab_size` ids trained on `texts` (save it with .save("tokenizer.json"))."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < MIN_VOCAB:
        raise SweeperInputError(
            "--vocab-size",
            vocab_size,
            f"a byte-level BPE needs at least {MIN_VOCAB} ids "
            f"(256 bytes and the specials); use --vocab-size {MIN_VOCAB} or more",
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def load_tokenizer(path: str, field: str = "data.tokenizer"):
    """A saved `tokenizers` file, or exit 2 naming it. Parsed once per process while the file is unchanged
    (the plan, the vocabulary and every data source of a trial ask for it)."""
    if not path:
        raise SweeperInputError(field, path, "name a tokenizer.json, or train one with `sweeper tokenizer`")
    if not Path(path).is_file():
        raise SweeperInputError(
            field,
            path,
            "no such file; train one with `sweeper tokenizer --data FILES "
            "--vocab-size V -o tokenizer.json`, or name an existing tokenizer.json",
        )
    stat = Path(path).stat()
    return _parsed(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size, field)


@lru_cache(maxsize=8)
def _parsed(path: str, mtime_ns: int, size: int, field: str):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(path)
    except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
        raise SweeperInputError(
            field,
            path,
            f"not a Hugging Face tokenizers file ({str(exc)[:200]}); "
            "give the tokenizer.json that tokenizers/transformers saved",
        ) from None


def eos_id(tok) -> int | None:
    """The id separating documents: this project's EOS, else a common one the tokenizer defines."""
    for name in (EOS, "</s>", "<eos>", "[SEP]", "<|end_of_text|>"):
        i = tok.token_to_id(name)
        if i is not None:
            return int(i)
    return None


class TextTokenizer:
    """A `tokenizers` file behind the interface the packers use (encode, bos/eos/pad ids, vocab_size)."""

    def __init__(self, tok):
        self.tok, self.vocab_size = tok, tok.get_vocab_size()
        self.eos_id = eos_id(tok)
        if self.eos_id is None:
            raise SweeperInputError(
                "data.tokenizer",
                "<tokenizer>",
                f"it defines no end-of-text token ({EOS}, "
                "</s>, <eos>...); captions need one; train one with `sweeper tokenizer`",
            )
        self.bos_id = self.eos_id  # GPT-style: one separator opens and closes documents
        pad = tok.token_to_id(SPECIALS[0])
        self.pad_id = self.eos_id if pad is None else int(pad)  # only at unscored positions

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids
