"""A short training run with checkpoints, and its resume from the first one: what every data source's
test checks (the loss falls, and a restarted trial continues at the same data position)."""

from __future__ import annotations

import copy

from sweeper.train.loop import TrainHParams, train


def train_and_resume(spec, data: dict, mixture, steps: int = 30, batch_size: int = 4):
    """(reports, whole run, run resumed from its step-10 checkpoint) on `data`."""
    hp = TrainHParams(
        lr=1e-2,
        batch_size=batch_size,
        mixture=mixture,
        eval_every=10,
        eval_batches=2,
        eval_batch_size=batch_size,
        checkpoint_every=10,
    )
    n_tokens = steps * hp.batch_size * spec.seq_len
    reports, states = [], []
    whole = train(
        spec,
        hp,
        n_tokens=n_tokens,
        seed=0,
        data=data,
        report=reports.append,
        checkpoint=lambda metrics, state: (reports.append(metrics), states.append(copy.deepcopy(state))),
    )
    assert int(states[0]["step"]) == 10
    resumed = train(spec, hp, n_tokens=n_tokens, seed=0, data=data, resume=states[0])
    return reports, whole, resumed
