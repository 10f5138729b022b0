"""Training batches built in DataLoader worker processes, so the trainer does not wait on decoding.

`data.loader_workers` processes each build a disjoint share of the one seeded stream: worker i makes
batches i, i + W, i + 2W, ... and torch's DataLoader hands them out round-robin, so the trainer sees
exactly the batches the in-process stream gives, in order. Each worker passes over the others' batches
without building them: token shards (and hf_text through them) jump, document sources (webdataset,
obelics) lay the sequences out without decoding their images, and mixtures do both per target; only the
generated data is built and dropped. Zero workers (the default, and right for CPU trials that already
use their cores to train) builds batches in-process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch


class _Share(torch.utils.data.IterableDataset):
    """Worker i's batches of the stream: start + i, start + i + W, ..."""

    def __init__(self, make: Callable[[], Iterator[dict]], start: int, n_workers: int):
        self.make, self.start, self.n_workers = make, start, n_workers

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        stream = self.make()
        advance(stream, self.start + worker)
        while True:  # with the images the worker found broken so far (webdataset, obelics)
            yield next(stream), frozenset(getattr(stream, "skipped_files", ()))
            advance(stream, self.n_workers - 1)


def advance(stream, n: int) -> None:
    """Move `stream` n batches on, as cheaply as it can: jump (`skip`), lay out without decoding
    (`pass_over`), or build and drop."""
    if n <= 0:
        return
    if hasattr(stream, "skip"):
        stream.skip(n)
    elif hasattr(stream, "pass_over"):
        stream.pass_over(n)
    else:
        for _ in range(n):
            next(stream)


class LoaderBatches:
    """The stream `make()` builds, from batch `start` on, through `workers` DataLoader processes.

    `skip(n)` before the first batch moves the start (a resumed run) when the source can jump; the
    trainer's counting (sweeper.train.loop.CountedBatches) then uses `batch_counts` as for the source.
    """

    def __init__(self, make: Callable[[], Iterator[dict]], workers: int):
        self.make, self.workers, self.start, self._it = make, int(workers), 0, None
        self._n, self._skipped = (
            0,
            [frozenset()] * self.workers,
        )  # batches handed out; broken images per worker
        probe = make()
        self.can_skip = hasattr(probe, "skip")
        self.batch_counts = getattr(probe, "batch_counts", None)

    def skip(self, n_batches: int) -> None:
        if self._it is not None or not self.can_skip:
            raise RuntimeError("skip() is for a source that can jump, before the first batch")
        self.start += n_batches

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        if self._it is None:
            loader = torch.utils.data.DataLoader(
                _Share(self.make, self.start, self.workers),
                batch_size=None,
                num_workers=self.workers,
                prefetch_factor=4,
                pin_memory=torch.cuda.is_available(),
            )
            self._it = iter(loader)
        batch, skipped = next(self._it)
        self._skipped[self._n % self.workers] = skipped  # the DataLoader takes workers in turn
        self._n += 1
        return batch

    @property
    def skipped_files(self) -> set[str]:
        return set().union(*self._skipped)

    @property
    def skipped_images(self) -> int:
        return len(self.skipped_files)


def loader_batches(make: Callable[[], Iterator[dict]], workers: int):
    """`make()`'s stream as is (no workers), or through `workers` DataLoader processes."""
    return make() if workers <= 0 else LoaderBatches(make, workers)
