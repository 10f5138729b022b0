"""FrontierSampler contract: the Optuna sampler shape, plus where it puts points.

The sampler is driven through an Optuna study exactly as PointSearcher drives
it (ask with the `point` distribution, tell the loss), with losses from a known
law, so no Ray is needed here.
"""

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.samplers import RandomSampler

from models.registry import ladder
from sweeper.config.schema import load_config
from sweeper.plan.trials import Plan, geometric_slices, model_specs, slice_trials
from sweeper.samplers.candidates import candidate_points, initial_design
from sweeper.samplers.frontier import (
    POINT,
    FrontierSampler,
    information_gain,
    variance_reductions,
    watched_values,
)
from sweeper.trial.simulated import simulated_loss

TRUE = {"E": 1.9, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.37}
SIM = {"law": "chinchilla", "params": TRUE, "noise": 0.005}
N_ASKS = 14

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def setting():
    cfg = load_config(
        "tiny",
        trainable="simulated",
        batch_size=16,
        **{
            "budgets.min_tokens_per_param": 2.0,
            "budgets.max_tokens_per_param": 2000.0,
            "budgets.min_steps": 20,
        },
    )
    specs = model_specs(cfg)
    first = next(c for c in np.geomspace(1e10, 1e13, 200) if len(slice_trials(specs, c, cfg)) >= 3)
    slices = geometric_slices(float(first) * 9.0, 3, 3.0)
    plan = Plan(
        slices=slices,
        trials=tuple(t for c in slices for t in slice_trials(specs, c, cfg)),
        budget=float("inf"),
        max_concurrent_trials=2,
    )
    candidates = candidate_points(cfg, plan)
    return cfg, plan, candidates


def make_sampler(setting, seed=0, **kw):
    _, plan, candidates = setting
    return FrontierSampler(candidates=candidates, initial=initial_design(plan, candidates), seed=seed, **kw)


def drive(setting, seed=0, asks=N_ASKS, **kw):
    """Sequential ask/tell on simulated losses; the proposed points in order."""
    _, _, candidates = setting
    by_id = {p.point_id: p for p in candidates}
    sampler = make_sampler(setting, seed=seed, **kw)
    study = optuna.create_study(sampler=sampler)
    dist = CategoricalDistribution([p.point_id for p in candidates])
    proposed, reasons = [], []
    for _ in range(asks):
        trial = study.ask({POINT: dist})
        point = by_id[trial.params[POINT]]
        proposed.append(point)
        reasons.append(sampler.last_reason)
        study.tell(trial, simulated_loss(SIM, point.to_dict(), seed))
    return proposed, reasons


@pytest.fixture(scope="module")
def run(setting):
    return drive(setting, seed=3)


def test_constructor_is_keyword_only(setting):
    _, _, candidates = setting
    with pytest.raises(TypeError):
        FrontierSampler(candidates)  # the Optuna convention: keyword arguments only


def test_same_seed_same_proposals(setting, run):
    again, _ = drive(setting, seed=3)
    assert [p.point_id for p in again] == [p.point_id for p in run[0]]


def test_every_proposal_is_a_ladder_size_on_an_isoflop_slice_within_five_percent(setting, run):
    cfg, _, _ = setting
    sizes = {s.size: s for s in ladder(cfg.model.kind, cfg.model.ladder)}
    for p in run[0]:
        assert p.size in sizes and p.n_params == int(sizes[p.size].n_params)
        assert abs(p.flops - p.budget) / p.budget <= 0.05
        assert p.flops == pytest.approx(p.n_tokens * sizes[p.size].flops_per_token)


def test_no_point_is_proposed_twice(run):
    ids = [p.point_id for p in run[0]]
    assert len(ids) == len(set(ids))


def test_starts_with_the_initial_design_then_uses_the_criterion(setting, run):
    _, plan, candidates = setting
    initial = initial_design(plan, candidates)
    proposed, reasons = run
    assert [p.point_id for p in proposed[: len(initial)]] == list(initial)
    assert "information per FLOP" in reasons[len(initial) :]


def true_log_nopt(candidates, budget):
    """log N of the ladder size with the lowest true loss on this budget's slice."""
    from sweeper.trial.simulated import law_loss

    at = [p for p in candidates if p.budget == budget]
    best = min(at, key=lambda p: law_loss("chinchilla", TRUE, p.n_params, p.n_tokens))
    return np.log(best.n_params)


def test_informed_proposals_concentrate_near_the_true_frontier(setting, run):
    _, plan, candidates = setting
    informed = run[0][len(initial_design(plan, candidates)) :]

    def dist(p):
        return abs(np.log(p.n_params) - true_log_nopt(candidates, p.budget))

    proposed = [dist(p) for p in informed]
    assert np.median(proposed) < np.median([dist(p) for p in candidates])
    # Within the sampler's 4x window of the true optimum, but for fit error at the start.
    assert np.mean(np.array(proposed) <= np.log(4.0) + 1e-9) >= 0.8


def test_other_parameters_go_to_the_fallback(setting):
    calls = []

    class Recording(RandomSampler):
        def sample_independent(self, study, trial, name, distribution):
            calls.append(name)
            return super().sample_independent(study, trial, name, distribution)

    study = optuna.create_study(sampler=make_sampler(setting, fallback=Recording(seed=0)))
    trial = study.ask({"lr": FloatDistribution(1e-4, 1e-2, log=True)})
    assert calls == ["lr"] and 1e-4 <= trial.params["lr"] <= 1e-2


def test_trials_in_flight_never_share_a_point(setting):
    _, _, candidates = setting
    by_id = {p.point_id: p for p in candidates}
    study = optuna.create_study(sampler=make_sampler(setting, seed=1))
    dist = CategoricalDistribution([p.point_id for p in candidates])
    # Finish the initial design so that the criterion, not the design list, proposes.
    for _ in range(8):
        t = study.ask({POINT: dist})
        study.tell(t, simulated_loss(SIM, by_id[t.params[POINT]].to_dict(), 1))
    in_flight = [study.ask({POINT: dist}).params[POINT] for _ in range(4)]
    assert len(set(in_flight)) == 4


def test_in_flight_information_lowers_the_gain_of_the_same_point():
    from sweeper.fit import get_law

    law = get_law("chinchilla")
    observed = np.array([[1e5, 1e6], [3e5, 1e6], [1e5, 3e6], [3e5, 3e6], [2e5, 5e6], [5e5, 2e6]])
    candidate = np.array([[4e5, 8e6]])
    alone = information_gain(law, TRUE, observed, candidate, ("a", "b"))
    with_it = information_gain(law, TRUE, np.vstack([observed, candidate]), candidate, ("a", "b"))
    assert with_it[0] < alone[0]


def test_watched_values_are_the_chinchilla_allocation_exponents():
    w = watched_values(TRUE)
    assert w["a"] == pytest.approx(0.37 / 0.71) and w["a"] + w["b"] == pytest.approx(1.0)


def test_a_degenerate_fit_gives_no_gain_and_infinite_halfwidths_not_an_error():
    from sweeper.fit import get_law
    from sweeper.samplers.frontier import fisher_halfwidths

    law = get_law("chinchilla")
    bad = {**TRUE, "A": float("nan")}
    nd = np.array([[1e5, 1e6], [3e5, 1e6], [1e5, 3e6], [3e5, 3e6], [2e5, 5e6], [5e5, 2e6]])
    assert np.isnan(information_gain(law, bad, nd, nd[:2], ("a", "b"))).all()
    hw = fisher_halfwidths(law, bad, nd[:, 0], nd[:, 1], np.zeros(len(nd)), ("a", "b"))
    assert hw == {"a": float("inf"), "b": float("inf")}


def test_exploration_prefers_cheap_points_but_still_reaches_the_largest_budget(setting):
    """Exploration draws with weight 1/cost: a uniform draw would mostly buy the dearest
    budgets (they hold the most sizes and cost the most)."""
    _, _, candidates = setting
    cost = np.array([p.flops for p in candidates])
    picks = [
        FrontierSampler._explore([p.point_id for p in candidates], cost, np.random.default_rng(i))
        for i in range(400)
    ]
    by_id = {p.point_id: p for p in candidates}
    drawn = np.array([by_id[pid].flops for pid in picks])
    assert drawn.mean() < 0.5 * cost.mean()
    assert {by_id[pid].budget for pid in picks} >= {max(p.budget for p in candidates)}


def test_a_term_the_fit_switched_off_still_counts_as_unknown():
    """A fit on cheap points can put E at 0; E must then look least known, not perfectly known
    (in log space its column would vanish and the sampler would never buy a point to pin it)."""
    from sweeper.fit import get_law
    from sweeper.samplers.frontier import log_loss_jacobian

    law = get_law("chinchilla")
    switched_off = {**TRUE, "E": 0.0}
    n, d = np.array([1e5, 1e6, 1e8]), np.array([1e6, 1e8, 1e12])
    column = log_loss_jacobian(law, switched_off, n, d)[:, list(switched_off).index("E")]
    loss = law.predict(switched_off, n, d)
    assert np.allclose(column, 1.0 / loss, rtol=1e-3)  # d log L / dE = 1/L, on E's unit scale
    observed = np.array([[1e5, 1e6], [3e5, 1e6], [1e5, 3e6], [3e5, 3e6], [2e5, 5e6], [5e5, 2e6]])
    dear = np.array([[1e8, 1e12]])
    gain = information_gain(
        law, switched_off, observed, dear, ("a", "b"), predict_at=dear, prediction_weight=1.0
    )
    assert np.isfinite(gain).all() and gain[0] > 0.1


def test_with_a_target_only_what_is_still_above_it_earns_gain():
    from sweeper.fit import get_law
    from sweeper.samplers.frontier import log_loss_jacobian, watched_gradients

    law = get_law("chinchilla")
    observed = np.array([[1e5, 1e6], [3e5, 1e6], [1e5, 3e6], [3e5, 3e6], [2e5, 5e6], [5e5, 2e6], [8e5, 8e6]])
    candidates = np.array([[4e5, 8e6], [1e5, 3e7], [6e5, 1e6]])
    j = log_loss_jacobian(law, TRUE, observed[:, 0], observed[:, 1])
    g = watched_gradients(TRUE, ("alpha", "beta"))
    var = np.einsum("wp,pq,wq->w", g, np.linalg.pinv(j.T @ j), g)
    target = float(np.sqrt(var[0] * var[1]))  # between the two variances: one is within target already
    lower = ("alpha", "beta")[int(np.argmin(var))]
    higher = ("alpha", "beta")[int(np.argmax(var))]
    both = information_gain(law, TRUE, observed, candidates, ("alpha", "beta"), target_var=target)
    above_only = information_gain(law, TRUE, observed, candidates, (higher,), target_var=target)
    assert np.allclose(both, above_only) and (both > 0).all()
    assert np.allclose(information_gain(law, TRUE, observed, candidates, (lower,), target_var=target), 0.0)
    # Progress is capped at the target: no candidate earns more than getting there.
    assert (both <= np.log(var.max() / target) + 1e-12).all()


def test_each_quantity_is_scored_against_its_own_target():
    """The prediction's target (log loss) is on another scale than an exponent's: with a already
    within its target, only progress on the prediction earns gain."""
    from sweeper.fit import get_law

    law = get_law("chinchilla")
    observed = np.array([[1e5, 1e6], [3e5, 1e6], [1e5, 3e6], [3e5, 3e6], [2e5, 5e6], [5e5, 2e6], [8e5, 8e6]])
    candidates = np.array([[4e5, 8e6], [1e5, 3e7], [6e5, 1e6], [2e6, 2e7]])
    far = np.array([[1e7, 1e9]])
    var, reduction = variance_reductions(law, TRUE, observed, candidates, ("a",), far)
    targets = np.array([2.0 * var[0], 0.5 * var[1]])  # a within its target, the prediction not
    gain = information_gain(law, TRUE, observed, candidates, ("a",), predict_at=far, target_var=targets)
    alone = np.log(var[1] / np.maximum(var[1] - reduction[:, 1], targets[1]))
    assert (gain > 0).all() and np.allclose(gain, alone)
    # One shared target below both variances counts progress on a too.
    shared = information_gain(
        law, TRUE, observed, candidates, ("a",), predict_at=far, target_var=0.5 * var.min()
    )
    assert (shared >= gain - 1e-12).all() and (shared > gain).any()


def test_failed_points_are_not_observed_information(setting):
    """A failed, diverged or crashed trial taught nothing: the criterion counts in-flight points as
    observed, never failed ones, and a failed point is not proposed again."""
    from optuna.trial import TrialState

    _, _, candidates = setting
    by_id = {p.point_id: p for p in candidates}
    sampler = make_sampler(setting, seed=2)
    study = optuna.create_study(sampler=sampler)
    dist = CategoricalDistribution([p.point_id for p in candidates])
    for _ in range(8):  # the initial design, so that the criterion proposes next
        t = study.ask({POINT: dist})
        study.tell(t, simulated_loss(SIM, by_id[t.params[POINT]].to_dict(), 2))
    failed = study.ask({POINT: dist})
    study.tell(failed, state=TrialState.FAIL)
    in_flight = study.ask({POINT: dist})
    seen: list[list[str]] = []
    original = sampler._nd
    sampler._nd = lambda ids: (seen.append(list(ids)), original(ids))[1]
    proposed = study.ask({POINT: dist}).params[POINT]
    # The observed design: the points that count in J^T J (the window's look at every candidate aside).
    observed = [ids for ids in seen if in_flight.params[POINT] in ids and len(ids) < len(candidates)]
    assert observed, "the criterion never counted the point in flight"
    assert all(failed.params[POINT] not in ids for ids in observed)
    assert proposed not in (failed.params[POINT], in_flight.params[POINT])
