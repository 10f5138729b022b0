"""The driver-to-trial contract: every key trial_config writes is a TrialSpec field, an undeclared key
fails with its name, and the recipe is resolved at the point."""

import math

import pytest

from sweeper.config.schema import load_config
from sweeper.plan.trials import make_plan
from sweeper.train.loop import LossWatch, checkpoint_due
from sweeper.trial.spec import TrialSpec, trial_config


def test_every_key_the_driver_writes_is_a_field_and_reads_back():
    cfg = load_config("tiny", training={"recipe": "paper"})
    point = make_plan(cfg).trials[0]
    config = {**trial_config(cfg), "point": point.to_dict(), "branching": None}
    trial = TrialSpec.of(config)
    assert trial.point_id == point.point_id
    assert trial.seed == cfg.seed and trial.recipe_name == "paper"
    assert trial.tasks["n_items"] == cfg.tasks.n_items
    hp = trial.train_hparams()
    assert hp.batch_size == point.batch_size  # the planned batch wins over the recipe's
    assert hp.lr != cfg.training.lr  # the paper recipe set the tiny size's own learning rate


def test_an_undeclared_key_fails_naming_it():
    with pytest.raises(TypeError, match="'pointt'"):
        TrialSpec.of({"pointt": {}})


def test_one_divergence_rule():
    watch = LossWatch()
    assert not watch.update(5.0) and not watch.update(7.9)
    assert watch.update(8.1)  # more than 3 nats above the first loss
    assert watch.update(1.0)  # once diverged, a run stays diverged
    assert LossWatch().update(math.nan)
    resumed = LossWatch(**{**watch.state()})
    assert resumed.first == 5.0 and not resumed.diverged


def test_one_checkpoint_cadence():
    assert [s for s in range(1, 11) if checkpoint_due(s, 0, 4)] == [4, 5, 6, 7, 8, 9, 10]
    assert not any(checkpoint_due(s, 0, 0) for s in range(1, 11))  # 0: never
    assert checkpoint_due(7, 3, 4) and not checkpoint_due(6, 3, 4)  # counted from the last save
