"""A Ray Train checkpoint (ZeRO-2 shards + step) resumes the run where it stopped."""

from __future__ import annotations

import pytest

from sweeper.train.distributed import (
    DistributedSettings,
    result_from,
    train_distributed,
)
from train_distributed.recipe import HP, SEED, n_tokens


def test_resumed_checkpoint_continues_the_run(ray_local, spec, reference, tmp_path):
    curve, single = reference
    settings = DistributedSettings(enabled=True, workers=2, zero_stage=2, micro_batch_size=2)
    common = {"n_tokens": n_tokens(), "seed": SEED, "settings": settings, "storage_path": str(tmp_path)}
    first = train_distributed(spec, HP, name="first-half", stop_at_step=6, **common)
    assert first.error is None and first.metrics["step"] == 6 and first.checkpoint is not None
    assert first.metrics["val_loss"] == pytest.approx(curve[6]["val_loss"], abs=2e-3)
    second = train_distributed(spec, HP, name="second-half", resume_from=first.checkpoint.path, **common)
    assert second.error is None
    final = result_from(second.metrics, wall_time_s=0.0)
    assert final.steps == single.steps == 10 and final.n_tokens == single.n_tokens
    # Continued, not restarted: the resumed run reports only steps after the checkpoint ...
    assert second.metrics["step"] == 10
    # ... and lands where the uninterrupted single-process run did.
    for target, loss in single.losses.items():
        assert final.losses[target] == pytest.approx(loss, abs=2e-3), target
