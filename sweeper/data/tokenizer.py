"""Character tokenizer: fixed, tiny vocabulary, nothing to download or train.

Ids 0-3 are specials; printable ASCII and newline follow. The vocabulary is
padded to 128 so embedding tables have a round size. A model with a larger
vocabulary (the paper ladder's 50,432) simply never sees the upper ids.
"""

from __future__ import annotations

PAD, BOS, EOS, UNK = 0, 1, 2, 3
N_SPECIAL = 4
CHARS = "\n" + "".join(chr(c) for c in range(32, 127))
VOCAB_SIZE = 128


class CharTokenizer:
    vocab_size = VOCAB_SIZE
    pad_id, bos_id, eos_id, unk_id = PAD, BOS, EOS, UNK

    def __init__(self) -> None:
        self._to_id = {c: i + N_SPECIAL for i, c in enumerate(CHARS)}
        self._to_char = {i: c for c, i in self._to_id.items()}

    def encode(self, text: str) -> list[int]:
        get = self._to_id.get
        return [get(c, UNK) for c in text]

    def decode(self, ids) -> str:
        return "".join(self._to_char.get(int(i), "") for i in ids)


TOKENIZER = CharTokenizer()
