"""`sweeper tokenizer`: train a byte-level BPE (`tokenizers`) on a corpus, for `data.tokenizer`.

    sweeper tokenizer --data corpus/ --vocab-size 8192 -o tokenizer.json

Reads the same files an `hf_text` search space names (jsonl/parquet/text/csv/arrow: a file, a
folder or a glob), through Hugging Face `datasets`, so what it trains on is what the sweep reads.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from sweeper.commands.common import add_common_options
from sweeper.errors import SweeperInputError


def register(sub) -> None:
    parser = sub.add_parser(
        "tokenizer",
        help="train a BPE tokenizer on a corpus (for data.tokenizer)",
        description="Train a byte-level BPE with Hugging Face tokenizers on the text column "
        "of local data files, and save it as a tokenizer.json.",
    )
    parser.add_argument("--data", required=True, help="data files: a file, a folder or a glob")
    parser.add_argument("--vocab-size", type=int, required=True, help="ids in the vocabulary (>= 258)")
    parser.add_argument("--output", "-o", required=True, help="where to save the tokenizer.json")
    parser.add_argument("--text-field", default="text", help="the column holding the text (default: text)")
    parser.add_argument(
        "--dataset",
        help="datasets builder (json, parquet, text, csv, arrow); default: from the files' extension",
    )
    parser.add_argument(
        "--max-documents", type=int, default=0, help="train on the first N documents only (0: all)"
    )
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from sweeper.data.bpe import train_bpe
    from sweeper.data.text_corpus import iter_texts

    data = {"dataset": args.dataset, "text_field": args.text_field}
    texts = iter_texts(data, args.data, field="--data", column_field="--text-field")
    if args.max_documents > 0:
        texts = itertools.islice(texts, args.max_documents)
    counted = _Counter(texts)
    tok = train_bpe(counted, args.vocab_size)
    if counted.n == 0:
        raise SweeperInputError(
            "--data",
            args.data,
            f"no text in column '{args.text_field}' of any row; name the column with --text-field",
        )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    tok.save(args.output)
    if not args.quiet:
        print(
            f"wrote {args.output}: {tok.get_vocab_size()} ids, trained on {counted.n} documents "
            f"from {args.data}",
            file=sys.stderr,
        )
    return 0


class _Counter:
    """Passes texts through, counting them."""

    def __init__(self, texts):
        self.texts, self.n = texts, 0

    def __iter__(self):
        for text in self.texts:
            self.n += 1
            yield text
