"""The stopper stops once converged and not before, and records why."""

from dataclasses import dataclass


from sweeper.errors import SweeperInputError
from sweeper.results import RunRecord, RunTable
from sweeper.stopping import ConvergenceStopper, OnlineFitter, Refit, RefitHistory


def refit(a: float, b: float, spent: float = 1.0) -> Refit:
    return Refit(n_runs=10, flops_spent=spent, halfwidths={"a": a, "b": b})


def stopper(history, **kw):
    kw = {"watch": ("a", "b"), "target_ci": 0.02, "patience": 2, "budget": 1e9, **kw}
    return ConvergenceStopper(history, **kw)


def test_not_converged_until_patience_refits_are_all_within_target():
    history = RefitHistory()
    s = stopper(history)
    sequence = [(0.1, 0.1), (0.015, 0.03), (0.019, 0.019), (0.05, 0.01), (0.02, 0.02), (0.01, 0.005)]
    stops = []
    for a, b in sequence:
        history.add(refit(a, b))
        stops.append(s.stop_all())
    # Converged only at the last refit: it and the one before are both <= 0.02 on a and b.
    assert stops == [False, False, False, False, False, True]
    assert s.stop_reason.startswith("converged")
    assert "a=0.0100" in s.stop_reason


def test_nan_halfwidth_never_counts_as_converged():
    history = RefitHistory()
    s = stopper(history, patience=1)
    history.add(refit(float("nan"), 0.001))
    assert not s.stop_all()


def test_budget_exhaustion_stops_and_says_so():
    history = RefitHistory(flops_spent=5e8)
    s = stopper(history, budget=1e9)
    assert not s.stop_all()
    history.flops_spent = 1.2e9
    assert s.stop_all()
    assert s.stop_reason.startswith("budget exhausted")


def test_stopper_never_cuts_a_single_trial():
    s = stopper(RefitHistory())
    assert s("trial", {"loss": 1.0}) is False


@dataclass(frozen=True)
class KnownFit:
    halfwidth: float
    params: dict
    derived: dict

    def ci_halfwidth(self, name):
        return self.halfwidth


def table_of(n: int) -> RunTable:
    records = [RunRecord(sweep_id="s", trial_id=str(i), point_id=f"p{i}", model_kind="dense_text", size="x",
                         n_params=1e5 * (i + 1), n_params_total=1e5, n_tokens=1e6, flops=1.0, budget=1.0,
                         losses={"loss": 3.0}) for i in range(n)]
    return RunTable.from_records(records)


def test_online_fitter_refits_logs_and_feeds_the_stopper():
    widths = iter([0.5, 0.01, 0.01])
    history = RefitHistory()
    logged = []
    runs = iter([8, 9, 10])
    fitter = OnlineFitter(history=history, load_table=lambda: table_of(next(runs)),
                          fit=lambda t: KnownFit(next(widths), {"E": 1.0}, {"a": 0.5}),
                          watch=("a", "b"), log=lambda r, i: logged.append((i, r.halfwidths["a"])))
    s = stopper(history)
    for _ in range(3):
        fitter.refit()
    assert logged == [(1, 0.5), (2, 0.01), (3, 0.01)]
    assert s.stop_all()


def test_a_trial_that_adds_no_run_adds_no_refit():
    """A failed or diverged trial leaves the ok runs as they were: refitting them again would
    count one fit twice towards `patience`."""
    history = RefitHistory()
    runs = iter([8, 9, 9, 10])  # the third trial failed
    fitter = OnlineFitter(history=history, load_table=lambda: table_of(next(runs)),
                          fit=lambda t: KnownFit(0.5 if len(t) < 9 else 0.01, {"E": 1.0}, {"a": 0.5}), watch=("a", "b"))
    s = stopper(history)
    assert fitter.refit() is not None and fitter.refit() is not None
    assert fitter.refit() is None and [r.n_runs for r in history.refits] == [8, 9]
    assert not s.stop_all()  # one converged fit so far, not two
    fitter.refit()
    assert s.stop_all()


def test_online_fitter_waits_for_enough_runs_and_identifiable_laws():
    history = RefitHistory()

    def unidentifiable(_):
        raise SweeperInputError("n_params", 1, "need more sizes")

    assert OnlineFitter(history=history, load_table=lambda: table_of(3), fit=lambda t: 1 / 0, watch=("a",)).refit() is None
    assert OnlineFitter(history=history, load_table=lambda: table_of(8), fit=unidentifiable, watch=("a",)).refit() is None
    assert history.refits == []


def test_grid_baseline_ignores_convergence():
    history = RefitHistory()
    s = stopper(history, patience=1, on_convergence=False)
    history.add(refit(0.001, 0.001))
    assert not s.stop_all() and s.stop_reason == ""


def test_an_unidentified_fit_never_counts_as_converged_however_narrow_its_resamples():
    """Runs whose loss rises with N at every budget: the fit is degenerate, its bootstrap
    spread may be tiny, and the stopper must still not call it converged."""
    import numpy as np

    from sweeper.fit import fit_law
    from sweeper.fit.synthetic import isoflop_design

    frame = isoflop_design([1e19, 1e20, 1e21])
    frame = frame.assign(loss=2.0 + 0.1 * np.log(frame["n_params"] / 1e8))
    history = RefitHistory()
    fitter = OnlineFitter(history=history, load_table=lambda: RunTable(frame.assign(status="ok")),
                          fit=lambda t: fit_law(t.frame, grid="coarse", n_bootstrap=10, seed=0),
                          watch=("alpha", "beta"))
    s = stopper(history, patience=1, target_ci=1e9, watch=("alpha", "beta"))
    assert fitter.refit() is not None
    assert not history.refits[-1].fit.identified
    assert not s.stop_all() and s.stop_reason == ""
