"""What a budget can buy: the adaptive design run against a law, with noise, in this process.

`sweeper plan --simulate` and the benchmarks (coverage, sweep efficiency) run the
product's own searcher, sampler, session and ledger through the in-process
driver, with no MLflow and no Ray: a simulated sweep of a hundred trials takes
seconds. The law is the search space's `simulation` law, the one a simulated
sweep would draw its losses from.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from sweeper.config.schema import SweepConfig, sweep_law
from sweeper.plan.trials import Plan, make_plan
from sweeper.sweep.ledger import SweepLedger, stop_rule, widened_for_stopping


@dataclass(frozen=True)
class SimulatedSweep:
    ledger: SweepLedger
    stop_reason: str
    compute_to_target: float  # compute spent when the stop rule first held; nan if it never did
    halfwidths_at_end: dict[str, float]  # the last bootstrapped refit's, or the last screen's
    fit: object  # the last refit's FitResult (bootstrapped at the end if it was not)


def simulate_sweep(
    cfg: SweepConfig, plan: Plan | None = None, *, seed: int | None = None, stop_on_convergence: bool = True
) -> SimulatedSweep:
    """One sweep of `cfg` against its simulation law (noise seeded by `seed`): adaptive, or with
    `design: grid` the plan's trials in order (slices ascending, sizes ascending within a slice).

    With stop_on_convergence False it runs to the budget (the grid: its whole plan), and the
    compute at which the stop rule first held is still reported, with the half-widths the whole
    budget buys. Both designs refit and decide through the same session and stop rule.
    """
    from sweeper.samplers.candidates import candidate_points
    from sweeper.sweep.execution import make_searcher
    from sweeper.sweep.in_process import run_in_process
    from sweeper.sweep.session import online_fit, sweep_session
    from sweeper.trial.spec import trial_config

    cfg = sweep_law(cfg)[0].replace(seed=cfg.seed if seed is None else seed, trainable="simulated")
    plan = plan or make_plan(cfg)
    adaptive = cfg.design == "adaptive"
    rule = stop_rule(cfg, adaptive=adaptive, on_convergence=stop_on_convergence)
    ledger = SweepLedger(rule=rule)
    base = {**trial_config(cfg), "branching": None}
    todo = [] if adaptive else sorted(plan.trials, key=lambda t: (t.budget, t.n_params))
    first: list[float] = []

    def watch_first(refit, index):  # the compute at which the stop rule first held
        if not first and ledger.converged():  # converged() holds whether or not the sweep stops on it
            first.append(refit.flops_spent)

    session = sweep_session(
        ledger,
        cfg,
        log_refit=watch_first,
        warn=lambda line: None,
    )
    searcher = (
        make_searcher(cfg, plan, candidate_points(cfg, plan), base, {}, session)[0] if adaptive else None
    )
    run_in_process(base, todo, session, None, searcher)
    last = ledger.refits[-1] if ledger.refits else None
    widths = dict(last.halfwidths) if last else {w: math.inf for w in cfg.fit.watch}
    fit = last.fit if last else None
    if last is not None and not last.bootstrapped and cfg.fit.n_bootstrap > 0:
        fit = widened_for_stopping(
            online_fit(cfg)(ledger.frame(), cfg.fit.n_bootstrap, last.fit), rule.ci_widening
        )
        widths = {w: float(fit.ci_halfwidth(w)) for w in cfg.fit.watch}
    return SimulatedSweep(
        ledger=ledger,
        stop_reason=ledger.outcome(adaptive=adaptive),
        compute_to_target=first[0] if first else math.nan,
        halfwidths_at_end=widths,
        fit=fit,
    )


@dataclass(frozen=True)
class Forecast:
    budget: float
    target_ci: float
    halfwidths: dict[str, float]  # median over the simulated sweeps, where they stopped
    compute_to_target: float  # median compute to reach the target; nan if most sweeps never do
    compute_range: tuple[float, float]  # the least and most any simulated sweep spent to reach it
    reached: int  # how many of the simulated sweeps reached the target within the budget
    n_sweeps: int
    size_span: float  # largest / smallest ladder size
    warnings: tuple[str, ...]
    prediction: dict | None = None  # what the sweeps predict at the target, and the simulation law's truth

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def forecast(cfg: SweepConfig, *, n_sweeps: int = 3) -> Forecast:
    """Median outcome of `n_sweeps` simulated adaptive sweeps (seeds 1..n), each stopped as `sweeper run`
    would stop it: on reaching the target, or with the budget spent (then its half-widths are what
    the whole budget buys)."""
    cfg, law_note = sweep_law(cfg)
    plan = make_plan(cfg)
    runs = [simulate_sweep(cfg, plan, seed=cfg.seed + 1 + i) for i in range(n_sweeps)]
    widths = {
        w: float(np.median([r.halfwidths_at_end.get(w, math.inf) for r in runs])) for w in cfg.fit.watch
    }
    reached = [r.compute_to_target for r in runs if math.isfinite(r.compute_to_target)]
    to_target = float(np.median(reached)) if 2 * len(reached) > n_sweeps else math.nan
    spread = (min(reached), max(reached)) if reached else (math.nan, math.nan)
    sizes = sorted({t.n_params for t in plan.trials})
    span = sizes[-1] / sizes[0] if sizes else math.nan
    warnings = [law_note] if law_note else []
    limit = runs[0].ledger.rule.limit  # each watched quantity's target
    short = {w: v for w, v in widths.items() if not v <= limit(w)}
    if short:
        shown = ", ".join(f"{w}'s CI half-width ~{v:.3g} (target {limit(w):g})" for w, v in short.items())
        warnings.append(
            f"the target is out of reach: sizes span {span:.0f}x, and "
            f"{cfg.budget:.3g} FLOPs buy {shown}; add smaller sizes (a wider ladder pins the "
            "exponents down) or raise the budget"
        )
    return Forecast(
        budget=cfg.budget,
        target_ci=cfg.fit.target_ci,
        halfwidths=widths,
        compute_to_target=to_target,
        compute_range=spread,
        reached=len(reached),
        n_sweeps=n_sweeps,
        size_span=span,
        warnings=tuple(warnings),
        prediction=expected_prediction(cfg, runs),
    )


def expected_prediction(cfg: SweepConfig, runs: list[SimulatedSweep]) -> dict | None:
    """The prediction each simulated sweep ends with (sweeper.fit.prediction, at fit.target_compute or 10x the
    largest slice): the median value and interval of each quantity, how many sweeps trusted it, and the
    simulation law's own value, which a real sweep does not know."""
    from sweeper.fit import get_law
    from sweeper.fit.prediction import optimum_grid, optimum_of, predict

    made = []
    for run in runs:
        if run.fit is None or len(run.ledger.runs) < 8:
            continue
        made.append(
            predict(
                run.ledger.frame(),
                target_compute=cfg.fit.target_compute,
                n_bootstrap=cfg.fit.n_bootstrap,
                seed=cfg.seed,
                identified=run.fit.identified,
                identification_warnings=run.fit.warnings,
            )
        )
    if not made:
        return None
    compute = made[0].compute
    frame = runs[0].ledger.frame()
    n, d = optimum_grid(frame, compute)
    law = get_law(cfg.simulation.law)
    true_n, true_d, true_loss = optimum_of(law.predict(dict(cfg.simulation.params), n, d), n, d)
    out = {
        "compute": compute,
        "basis": made[0].basis,
        "trusted": sum(p.trusted for p in made),
        "n_sweeps": len(made),
        "truth": {"N_opt": true_n, "D_opt": true_d, "loss": true_loss},
    }
    for name, attr in (("N_opt", "n_params"), ("D_opt", "n_tokens"), ("loss", "loss")):
        values = [getattr(p, attr) for p in made if getattr(p, attr) is not None]
        cis = [p.ci[name] for p in made if p.ci.get(name)]
        out[name] = float(np.median(values)) if values else None
        out[f"{name}_ci"] = [float(np.median([c[i] for c in cis])) for i in (0, 1)] if cis else None
    return out


def format_forecast(f: Forecast) -> str:
    lines = [
        f"simulated adaptive sweeps ({f.n_sweeps}, against the search space's simulation law, with noise):",
        f"  expected CI half-widths where the sweeps stop (target {f.target_ci}, "
        f"budget {f.budget:.3g} FLOPs): " + ", ".join(f"{w}={v:.3g}" for w, v in f.halfwidths.items()),
    ]
    if math.isfinite(f.compute_to_target):
        lo, hi = f.compute_range
        lines.append(
            f"  expected compute to reach CI half-width <= {f.target_ci}: {f.compute_to_target:.3g} FLOPs "
            f"({f.compute_to_target / f.budget:.0%} of the budget; {lo:.3g} to {hi:.3g} over the "
            f"{f.reached}/{f.n_sweeps} sweeps that reached it: the noise decides where in that range)"
        )
    p = f.prediction
    if p:
        where = f"C = {p['compute']:.3g} FLOPs" + (f" ({p['basis']})" if p.get("basis") else "")
        lines.append(
            f"  the sweeps' prediction at {where}, median value [median interval]; trusted in "
            f"{p['trusted']}/{p['n_sweeps']}; the simulation law's own value after '|':"
        )
        for name in ("N_opt", "D_opt", "loss"):
            ci = p[f"{name}_ci"]
            shown = f"{p[name]:.4g}" if p[name] is not None else "none"
            shown += f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else " (no interval)"
            lines.append(f"    {name:<6} {shown}  | {p['truth'][name]:.4g}")
    lines += [f"WARNING: {w}" for w in f.warnings]
    return "\n".join(lines)
