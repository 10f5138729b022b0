"""Planning: slices are geometric, trials spend their slice's FLOPs, sizes come from the ladder."""

import math

import pytest

from models.registry import ladder
from sweeper.config.schema import load_config
from sweeper.errors import SweeperInputError
from sweeper.plan.trials import MIN_SIZES_PER_SLICE, make_plan


def config(**overrides):
    # A fixed batch keeps tokens = steps x batch x seq_len checkable; recipes are tested in tests/tuning.
    overrides.setdefault("kind", "dense_text")
    overrides.setdefault("training.recipe", "fixed")
    return load_config("tiny", **overrides)


def cheapest_grid_budget(cfg) -> float:
    """Budget of one trial of the smallest size at its minimum step count."""
    spec = min(ladder(cfg.model.kind, cfg.model.ladder), key=lambda s: s.flops_per_token)
    return spec.flops_per_token * spec.seq_len * cfg.training.batch_size * cfg.budgets.min_steps


@pytest.fixture(scope="module")
def plan_and_cfg():
    cfg = config(budget=2e14)
    return make_plan(cfg), cfg


def test_every_trial_spends_its_slice_budget_within_rounding(plan_and_cfg):
    plan, cfg = plan_and_cfg
    for t in plan.trials:
        assert abs(t.flops - t.budget) / t.budget <= 0.5 / cfg.budgets.min_steps + 1e-12
        assert abs(t.flops - t.budget) / t.budget < 0.05


def test_tokens_are_whole_steps_of_the_batch(plan_and_cfg):
    plan, cfg = plan_and_cfg
    for t in plan.trials:
        assert t.n_tokens == t.steps * cfg.training.batch_size * t.seq_len
        assert t.steps >= cfg.budgets.min_steps


def test_sizes_and_flops_come_from_the_ladder(plan_and_cfg):
    plan, cfg = plan_and_cfg
    specs = {s.size: s for s in ladder(cfg.model.kind, cfg.model.ladder)}
    for t in plan.trials:
        spec = specs[t.size]
        assert t.n_params == spec.n_params
        assert t.flops == pytest.approx(t.n_tokens * spec.flops_per_token)


def test_slices_are_geometric_and_the_grid_fits_the_total(plan_and_cfg):
    plan, cfg = plan_and_cfg
    assert len(plan.slices) == cfg.budgets.n_slices
    ratios = [b / a for a, b in zip(plan.slices, plan.slices[1:])]
    assert all(r == pytest.approx(cfg.budgets.ratio) for r in ratios)
    assert plan.total_flops <= cfg.budget
    # The top slice is as large as the budget allows: one ratio step up would not fit.
    bigger = make_plan(config(budget=2e14 * cfg.budgets.ratio**1.5))
    assert max(bigger.slices) > max(plan.slices)


def test_each_slice_has_enough_sizes_within_the_tokens_per_param_window(plan_and_cfg):
    plan, cfg = plan_and_cfg
    for budget, trials in plan.by_slice().items():
        assert len(trials) >= MIN_SIZES_PER_SLICE
        assert len({t.size for t in trials}) == len(trials)
        for t in trials:
            assert (
                cfg.budgets.min_tokens_per_param
                <= t.n_tokens / t.n_params
                <= cfg.budgets.max_tokens_per_param
            )


def test_model_size_subset_is_honoured():
    plan = make_plan(config(budget=2e14, sizes=["tiny-1", "tiny-2", "tiny-3"], **{"budgets.n_slices": 4}))
    assert {t.size for t in plan.trials} == {"tiny-1", "tiny-2", "tiny-3"}


def test_budget_below_the_smallest_grid_is_rejected():
    cfg = config(budget=1.0)
    with pytest.raises(SweeperInputError) as err:
        make_plan(cfg)
    assert err.value.field == "budget"
    assert "raise --budget" in str(err.value)


def test_budget_just_above_one_trial_still_cannot_fill_three_slices():
    cfg = config(budget=1e9)
    cfg = config(budget=cheapest_grid_budget(cfg) * 2)
    with pytest.raises(SweeperInputError, match="too small"):
        make_plan(cfg)


def test_explicit_slice_the_ladder_cannot_fill_is_rejected():
    with pytest.raises(SweeperInputError) as err:
        make_plan(config(budget=1e14, slices=[1e10]))
    assert err.value.field == "budgets.slices"
    assert "ladder sizes can fill" in str(err.value)


def test_unknown_size_and_kind_are_rejected():
    with pytest.raises(SweeperInputError, match="tiny-1"):
        make_plan(config(budget=1e14, sizes=["huge"]))
    with pytest.raises(SweeperInputError) as err:
        make_plan(config(budget=1e14, kind="rnn"))
    assert "dense_text" in str(err.value)


def test_plan_command_prints_every_trial_and_spends_nothing(capsys, tmp_path, monkeypatch):
    from sweeper.cli import main

    monkeypatch.chdir(tmp_path)
    assert (
        main(["plan", "tiny", "--budget", "2e14", "--kind", "dense_text", "--set", "training.recipe=fixed"])
        == 0
    )
    out = capsys.readouterr().out
    plan = make_plan(config(budget=2e14))
    assert all(t.point_id in out for t in plan.trials)
    assert "est" in out and not (tmp_path / "mlruns").exists()
    assert main(["plan", "tiny", "--budget", "-1"]) == 2
    assert "budget" in capsys.readouterr().err
    assert math.isfinite(plan.est_wall_seconds)
