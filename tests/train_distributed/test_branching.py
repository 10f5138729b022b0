"""Cooldown branching: a branched (N, D) point == an independent run of it; stable phase paid once."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sweeper.train.branching import (
    branch_step,
    branched_flops,
    marginal_flops,
    plan_branches,
    train_branched,
)
from sweeper.train.loop import train
from train_distributed.recipe import HP, SEED

STEPS = {"short": 10, "mid": 20, "long": 40}


def _tokens(steps: int, hp=HP) -> int:
    return steps * hp.batch_size * 128


@pytest.fixture(scope="module")
def runs(spec):
    hp = replace(HP, warmup_steps=2, eval_every=5)
    points = [(pid, _tokens(s)) for pid, s in STEPS.items()]
    branched = train_branched(spec, hp, points, seed=SEED)
    independent = {pid: train(spec, hp, n_tokens=n, seed=SEED) for pid, n in points}
    return hp, branched, independent


def test_branched_points_match_independent_runs(runs):
    _, branched, independent = runs
    for pid in STEPS:
        b, i = branched[pid], independent[pid]
        assert b.steps == i.steps and b.n_tokens == i.n_tokens
        for target, loss in i.losses.items():
            assert b.losses[target] == pytest.approx(loss, abs=1e-3), (pid, target)
    # The points differ from each other: the comparison is not vacuous.
    assert independent["long"].losses["avg"] < independent["short"].losses["avg"] - 0.05


def test_stable_phase_is_counted_once(runs, spec):
    hp, branched, independent = runs
    per_step = spec.flops_per_token * hp.batch_size * spec.seq_len
    stable = branch_step(STEPS["long"], hp.cooldown_frac)
    cooldowns = sum(t - branch_step(t, hp.cooldown_frac) for t in STEPS.values())
    spent = sum(r.flops for r in branched.values())
    assert spent == pytest.approx((stable + cooldowns) * per_step)
    assert spent < 0.75 * sum(r.flops for r in independent.values())
    for pid, r in branched.items():  # the law still sees each point's own (N, D, C)
        assert r.extra["equivalent_flops"] == pytest.approx(independent[pid].flops)


def test_warmup_frac_branches_stay_within_noise(spec):
    """With warmup as a fraction, branches share the shortest point's warmup: close, not identical."""
    hp = replace(HP, warmup_frac=0.1, eval_every=10)
    branched = train_branched(spec, hp, [("a", _tokens(10)), ("b", _tokens(30))], seed=SEED)
    alone = train(spec, hp, n_tokens=_tokens(30), seed=SEED)
    other_seed = train(spec, hp, n_tokens=_tokens(30), seed=SEED + 1)
    noise = abs(alone.losses["avg"] - other_seed.losses["avg"])
    assert abs(branched["b"].losses["avg"] - alone.losses["avg"]) <= max(2 * noise, 0.02)


def test_planner_costs_know_a_branch_is_cheaper():
    from sweeper.config import load_config
    from sweeper.plan import make_plan

    cfg = load_config("tiny")
    plan = make_plan(cfg)
    frac = cfg.training.cooldown_frac
    sizes = plan_branches(plan.trials, frac)
    assert sum(len(s.branches) for s in sizes) == len(plan.trials)
    assert branched_flops(plan.trials, frac) < plan.total_flops
    for s in sizes:
        assert sum(s.charged_flops().values()) == pytest.approx(s.flops)
    longest = max(plan.trials, key=lambda t: t.steps)
    done = branch_step(longest.steps, frac)
    shorter = [t for t in plan.trials if t.size == longest.size and t.steps < longest.steps]
    for t in shorter:  # stable phase already trained past its snapshot: only the cooldown is left to pay
        assert marginal_flops(t, stable_steps_done=done, cooldown_frac=frac) == pytest.approx(
            t.flops * (t.steps - branch_step(t.steps, frac)) / t.steps)
    assert marginal_flops(longest, stable_steps_done=0, cooldown_frac=frac) == pytest.approx(longest.flops)


def test_tune_trial_reports_every_branch(ray_local, tmp_path):
    from dataclasses import asdict

    from ray import tune

    from sweeper.train.branching import train_size_branched

    finals = []

    class Finals(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            if result.get("branch_final"):
                finals.append(result)

    hp = asdict(replace(HP, eval_every=100))
    hp["mixture"] = list(HP.mixture)
    points = [{"point_id": pid, "kind": "early_fusion", "size": "tiny-1", "n_tokens": _tokens(s)}
              for pid, s in (("p10", 10), ("p20", 20))]
    tune.Tuner(train_size_branched, param_space={"points": points, "hparams": hp, "seed": SEED},
               run_config=tune.RunConfig(storage_path=str(tmp_path), callbacks=[Finals()], verbose=0)).fit()
    assert sorted(r["point_id"] for r in finals) == ["p10", "p20"]
    assert all(r["status"] == "ok" and r["flops"] < r["equivalent_flops"] for r in finals if r["point_id"] == "p20")
