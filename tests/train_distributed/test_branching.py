"""Cooldown branching: a branched (N, D) point == an independent run of it; stable phase paid once."""

from __future__ import annotations

import pytest

from sweeper.train.branch_costs import (
    branch_step,
    branched_flops,
    marginal_flops,
    plan_branches,
)
from sweeper.train.branching import train_branched
from sweeper.train.loop import train
from train_distributed.recipe import HP, SEED

STEPS = {"short": 10, "mid": 20, "long": 40}


def _tokens(steps: int, hp=HP) -> int:
    return steps * hp.batch_size * 128


@pytest.fixture(scope="module")
def runs(spec):
    hp = HP.replace(warmup_steps=2, eval_every=5)
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
    # FLOPs are counted on the batches; one stream per seed, so the independent runs' counts price each part
    stable = independent["long"].flops_between(0, branch_step(STEPS["long"], hp.cooldown_frac))
    cooldowns = sum(
        independent[pid].flops_between(branch_step(t, hp.cooldown_frac), t) for pid, t in STEPS.items()
    )
    spent = sum(r.flops for r in branched.values())
    assert spent == pytest.approx(stable + cooldowns)
    per_step = spec.flops_per_token * hp.batch_size * spec.seq_len  # the plan's estimate, at 45/45/10
    steps = branch_step(STEPS["long"], hp.cooldown_frac)
    steps += sum(t - branch_step(t, hp.cooldown_frac) for t in STEPS.values())
    assert spent == pytest.approx(steps * per_step, rel=0.02)
    assert spent < 0.75 * sum(r.flops for r in independent.values())
    for pid, r in branched.items():  # the law still sees each point's own (N, D, C)
        assert r.extra["equivalent_flops"] == pytest.approx(independent[pid].flops)


def test_warmup_frac_branches_stay_within_noise(spec):
    """With warmup as a fraction, branches share the shortest point's warmup: close, not identical."""
    hp = HP.replace(warmup_frac=0.1, eval_every=10)
    branched = train_branched(spec, hp, [("a", _tokens(10)), ("b", _tokens(30))], seed=SEED)
    alone = train(spec, hp, n_tokens=_tokens(30), seed=SEED)
    other_seed = train(spec, hp, n_tokens=_tokens(30), seed=SEED + 1)
    noise = abs(alone.losses["avg"] - other_seed.losses["avg"])
    assert abs(branched["b"].losses["avg"] - alone.losses["avg"]) <= max(2 * noise, 0.02)


@pytest.fixture(scope="module")
def tiny_plan():
    from sweeper.config.schema import load_config
    from sweeper.plan.trials import make_plan

    return make_plan(load_config("tiny"))


def test_a_branching_plan_affords_more_than_independent_runs_could():
    from sweeper.config.schema import load_config
    from sweeper.plan.trials import make_plan

    plain = make_plan(load_config("tiny"))
    branched = make_plan(load_config("tiny", **{"training.branching": True}))
    assert plain.spent_flops == plain.total_flops <= plain.budget
    assert (
        branched.spent_flops <= branched.budget < branched.total_flops
    )  # fits only because branches are cheaper
    assert branched.spent_flops == pytest.approx(branched_flops(branched.trials, branched.cooldown_frac))
    assert max(branched.slices) > max(plain.slices)


def test_planner_costs_know_a_branch_is_cheaper():
    from sweeper.config.schema import load_config
    from sweeper.plan.trials import make_plan

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
            t.flops * (t.steps - branch_step(t.steps, frac)) / t.steps
        )
    assert marginal_flops(longest, stable_steps_done=0, cooldown_frac=frac) == pytest.approx(longest.flops)


def test_tune_trial_reports_every_branch(ray_local, tmp_path):

    from ray import tune

    from sweeper.trial.trainable import train_size_branched

    finals = []

    class Finals(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            if result.get("branch_final"):
                finals.append(result)

    hp = HP.replace(eval_every=100).model_dump()
    hp["mixture"] = list(HP.mixture)
    points = [
        {"point_id": pid, "kind": "early_fusion", "size": "tiny-1", "n_tokens": _tokens(s)}
        for pid, s in (("p10", 10), ("p20", 20))
    ]
    tune.Tuner(
        train_size_branched,
        param_space={"points": points, "hparams": hp, "seed": SEED},
        run_config=tune.RunConfig(storage_path=str(tmp_path), callbacks=[Finals()], verbose=0),
    ).fit()
    assert sorted(r["point_id"] for r in finals) == ["p10", "p20"]
    assert all(
        r["status"] == "ok" and r["flops"] < r["equivalent_flops"] for r in finals if r["point_id"] == "p20"
    )


def test_a_trial_branches_off_the_snapshot_a_shorter_trial_of_its_size_left(spec, tmp_path):
    from sweeper.train.branching import train_point_branched

    hp = HP.replace(eval_every=5)
    short, _ = train_point_branched(
        spec, hp, n_tokens=_tokens(10), seed=SEED, store_root=tmp_path, warmup_steps=2
    )
    long, info = train_point_branched(
        spec, hp, n_tokens=_tokens(40), seed=SEED, store_root=tmp_path, warmup_steps=2
    )
    alone = train(spec, hp.replace(warmup_steps=2), n_tokens=_tokens(40), seed=SEED)
    assert (
        info["stable_from_step"] == branch_step(10, hp.cooldown_frac) == 8
    )  # reused the short trial's stable steps
    assert info["flops_spent"] == pytest.approx(
        alone.flops_between(8, 40)
    )  # counted on the batches of steps 9-40
    per_step = spec.flops_per_token * hp.batch_size * spec.seq_len
    assert info["flops_spent"] == pytest.approx((40 - 8) * per_step, rel=0.02)  # the plan's estimate
    assert long.flops == pytest.approx(
        alone.flops
    )  # C of the point is unchanged: the law sees the same (N, D, C)
    assert long.losses["avg"] == pytest.approx(
        alone.losses["avg"], rel=1e-4
    )  # the same run, not an approximation
    other_seed, info = train_point_branched(
        spec, hp, n_tokens=_tokens(40), seed=SEED + 1, store_root=tmp_path, warmup_steps=2
    )
    assert info["stable_from_step"] == 0  # snapshots never cross seeds (or any stable-phase hyperparameter)


def test_a_retried_branch_counts_what_it_spent_from_where_it_first_branched(spec, tmp_path):
    from sweeper.train.branching import train_point_branched

    hp = HP.replace(eval_every=5, checkpoint_every=5)
    train_point_branched(spec, hp, n_tokens=_tokens(10), seed=SEED, store_root=tmp_path, warmup_steps=2)
    saved = []
    train_point_branched(
        spec,
        hp,
        n_tokens=_tokens(40),
        seed=SEED,
        store_root=tmp_path,
        warmup_steps=2,
        checkpoint=lambda metrics, state: saved.append(state),
    )
    assert saved and all(s["branched_from"] == 8 for s in saved)
    retried = saved[-1]  # the last checkpoint before a crash: Tune hands it back on the retry
    result, info = train_point_branched(
        spec, hp, n_tokens=_tokens(40), seed=SEED, store_root=tmp_path, warmup_steps=2, resume=retried
    )
    assert retried["step"] > 8 and info["stable_from_step"] == 8
    assert info["flops_spent"] == pytest.approx(result.flops_between(8, 40))  # counted on the batches of 9-40
    per_step = spec.flops_per_token * hp.batch_size * spec.seq_len
    assert info["flops_spent"] == pytest.approx((40 - 8) * per_step, rel=0.02)


def test_point_cost_charges_only_stable_steps_no_other_point_trained(tiny_plan):
    from sweeper.train.branch_costs import point_cost

    frac = 0.2
    by_size = {}
    for t in tiny_plan.trials:
        by_size.setdefault(t.size, []).append(t)
    ts = sorted(max(by_size.values(), key=len), key=lambda t: t.steps)
    shorter, longer = ts[0], ts[-1]
    assert point_cost(longer, [], frac) == pytest.approx(longer.flops)
    assert point_cost(longer, [], None) == longer.flops
    with_short = point_cost(longer, [shorter], frac)
    assert with_short == pytest.approx(
        marginal_flops(longer, stable_steps_done=branch_step(shorter.steps, frac), cooldown_frac=frac)
    )
    assert with_short < longer.flops
    assert point_cost(shorter, [longer], frac) == pytest.approx(
        shorter.flops
    )  # a longer run's snapshot lies past it


def test_a_branching_sweep_pays_each_sizes_stable_phase_once(ray_local, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from sweeper import Sweeper

    monkeypatch.chdir(tmp_path)
    sweeper = Sweeper(
        "tiny",
        kind="dense_text",
        design="grid",
        budget=3e11,
        slices=[3e10, 6e10],
        sizes=["tiny-1", "tiny-2", "tiny-3"],
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        n_bootstrap=0,
        **{
            "budgets.min_tokens_per_param": 0.1,
            "budgets.min_steps": 10,
            "training.eval_every": 50,
            "training.eval_batches": 1,
            "training.branching": True,
            # one at a time: a longer point that starts before its size's shorter one has
            # left the snapshot trains the stable phase itself (correct, but nothing shared)
            "ray.max_concurrent_trials": 1,
        },
    )
    plan = sweeper.plan()
    result = sweeper.run(progress=lambda line: None)
    runs = {
        r.data.tags["sweeper.point_id"]: r
        for r in MlflowClient(result.tracking_uri).search_runs(
            [result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'"
        )
    }
    assert sorted(runs) == sorted(t.point_id for t in plan.trials)
    for t in plan.trials:
        m = runs[t.point_id].data.metrics
        assert m["flops"] == pytest.approx(t.flops, rel=0.02)  # the law's C of the point
        if t.budget == max(
            plan.slices
        ):  # the longer point of each size starts where the shorter one branched
            assert m["stable_from_step"] > 0 and m["flops_spent"] < m["flops"], t.point_id
    assert result.total_flops < sum(t.flops for t in plan.trials)
    assert result.total_flops == pytest.approx(plan.spent_flops, rel=0.05)
