"""The report's figures, each a plain matplotlib `Figure` built from a run table and fits.

Figures are made without pyplot (no global state, no GUI backend: an Agg
canvas is attached), so they work in Ray workers, tests and headless servers,
and the caller keeps the Figure object. Every plotted data series carries a
`gid` (e.g. "runs", "parabola", "minima") so tests and users can read back
exactly what was drawn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sweeper.fit.derived import compute_of
from sweeper.fit.isoflop import resampled_optima, slice_keys, slice_optima

SIM_NOTE = "simulated runs (a known law plus noise), not training"


def new_figure(width: float = 6.4, height: float = 4.4) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _colours(n: int):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.05, 0.9, max(n, 1))]


def _plain_log_ticks(ax) -> None:
    """Log axes spanning less than a decade label minor ticks too; keep only the major ones, plainly."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    if ax.xaxis.get_scale() == "log":
        ax.xaxis.set_minor_formatter(NullFormatter())
    if ax.yaxis.get_scale() == "log":
        plain = FuncFormatter(lambda v, _: f"{v:.3g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)


def _mark_simulated(ax, frame: pd.DataFrame) -> None:
    if "source" in frame and (frame["source"] == "simulated").any():
        ax.text(0.99, 0.01, SIM_NOTE, transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.4")


def plot_isoflop(frame: pd.DataFrame, *, column: str = "loss", min_points: int = 3) -> Figure:
    """Loss against N on each isoFLOP slice, the parabola in log N fitted to it, and its vertex."""
    fig = new_figure()
    ax = fig.add_subplot()
    keys = slice_keys(frame)
    budgets = np.unique(keys)
    parabolas = {}
    for colour, c in zip(_colours(len(budgets)), budgets):
        sub = frame[keys == c].sort_values("n_params")
        n, y = sub["n_params"].to_numpy(float), sub[column].to_numpy(float)
        ax.scatter(n, y, color=colour, s=22, zorder=3, label=f"C = {c:.2g}", gid=f"runs:{c:.6g}")
        if np.unique(n).size >= min_points:
            parabolas[c] = p = np.polyfit(np.log(n), y, 2)
            x = np.linspace(np.log(n.min()), np.log(n.max()), 100)
            ax.plot(np.exp(x), np.polyval(p, x), color=colour, lw=1.2, gid=f"parabola:{c:.6g}")
    opt = slice_optima(frame, column, min_points)
    if len(opt):
        at = [np.polyval(parabolas[c], np.log(n_opt)) for c, n_opt in zip(opt["budget"], opt["n_opt"])]
        ax.scatter(opt["n_opt"], at, marker="*", s=140, color="crimson", edgecolor="k", zorder=4,
                   label="parabola minima", gid="minima")
    ax.set(xscale="log", xlabel="parameters N", ylabel=column, title="isoFLOP curves (Approach 2)")
    ax.legend(fontsize=7)
    _mark_simulated(ax, frame)
    return fig


def isoflop_band(frame: pd.DataFrame, compute: np.ndarray, *, column: str = "loss", n_boot: int = 200,
                 seed: int = 0, level: float = 0.95) -> dict[str, np.ndarray]:
    """Pointwise bootstrap band of N_opt(C), D_opt(C) from resampling runs within slices."""
    curves: dict[str, list] = {"n_opt": [], "d_opt": []}
    lc = np.log(compute)
    for opt in resampled_optima(frame, column, n_boot, seed):
        for name, values in curves.items():
            slope, icept = np.polyfit(np.log(opt["budget"]), np.log(opt[name]), 1)
            values.append(np.exp(icept + slope * lc))
    tail = 50.0 * (1.0 - level)
    out = {}
    for name, values in curves.items():
        if len(values) >= 2:
            out[name] = np.percentile(np.array(values), [tail, 100.0 - tail], axis=0)
    return out


def plot_optimal_allocation(frame: pd.DataFrame, *, parametric=None, isoflop=None, column: str = "loss",
                            n_boot: int = 200, seed: int = 0) -> Figure:
    """N_opt(C) and D_opt(C): slice minima, Approach 2 with a bootstrap band, Approach 3's law."""
    fig = new_figure(9.6, 4.2)
    axes = fig.subplots(1, 2)
    c_all = compute_of(frame)
    compute = np.geomspace(c_all.min() / 2, c_all.max() * 2, 60)
    band = isoflop_band(frame, compute, column=column, n_boot=n_boot, seed=seed) if isoflop is not None else {}
    for ax, name, label, key in ((axes[0], "n_opt", "N_opt", "a"), (axes[1], "d_opt", "D_opt", "b")):
        if isoflop is not None:
            opt = pd.DataFrame(isoflop.extras.get("slices", {}))
            if len(opt):
                ax.scatter(opt["budget"], opt[name], color="crimson", marker="*", s=90, zorder=3,
                           label="slice minima", gid=f"minima:{name}")
            k = isoflop.derived["K_a" if key == "a" else "K_b"]
            ax.plot(compute, k * compute ** isoflop.derived[key], color="crimson", lw=1.2,
                    label=f"Approach 2: {key}={isoflop.derived[key]:.3f}", gid=f"approach2:{name}")
            if name in band:
                ax.fill_between(compute, band[name][0], band[name][1], color="crimson", alpha=0.15,
                                label="95% bootstrap band", gid=f"band:{name}")
        if parametric is not None and {"K_a", "K_b"} <= set(parametric.derived):
            n_opt, d_opt = parametric.predict_optimum(compute)
            ci = parametric.ci.get(key)
            shown = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
            ax.plot(compute, n_opt if name == "n_opt" else d_opt, color="navy", lw=1.2, ls="--",
                    label=f"Approach 3: {key}={parametric.derived[key]:.3f}{shown}", gid=f"approach3:{name}")
        ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel=label, title=f"{label}(C)")
        ax.legend(fontsize=7)
        _plain_log_ticks(ax)
    _mark_simulated(axes[1], frame)
    return fig


def plot_envelope(frame: pd.DataFrame, envelope, *, column: str = "loss") -> Figure:
    """Every run's loss against compute, the lower convex hull, and L = K C^c fitted to it."""
    fig = new_figure()
    ax = fig.add_subplot()
    c = compute_of(frame)
    ax.scatter(c, frame[column], s=16, color="0.55", label="runs", gid="runs")
    hx, hy = np.exp(envelope.extras["hull_log_c"]), np.exp(envelope.extras["hull_log_loss"])
    ax.plot(hx, hy, "o", color="darkorange", ms=5, label="lower hull", gid="hull")
    grid = np.geomspace(c.min(), c.max(), 100)
    ci = envelope.ci.get("c")
    shown = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    ax.plot(grid, envelope.params["K"] * grid ** envelope.params["c"], color="darkorange", lw=1.5,
            label=f"L = {envelope.params['K']:.3g} C^{envelope.params['c']:.4f}{shown}", gid="envelope")
    ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel=column, title="loss envelope L(C) (Approach 1)")
    ax.legend(fontsize=7)
    _plain_log_ticks(ax)
    _mark_simulated(ax, frame)
    return fig


def plot_law_contours(frame: pd.DataFrame, fit, *, column: str = "loss") -> Figure:
    """The fitted L(N, D) as contours over (N, D), the runs on top, and the compute-optimal line."""
    fig = new_figure(6.4, 5.0)
    ax = fig.add_subplot()
    n, d = frame["n_params"].to_numpy(float), frame["n_tokens"].to_numpy(float)
    gn = np.geomspace(n.min() / 3, n.max() * 3, 120)
    gd = np.geomspace(d.min() / 3, d.max() * 3, 120)
    mn, md = np.meshgrid(gn, gd)
    loss = fit.predict(mn.ravel(), md.ravel()).reshape(mn.shape)
    cs = ax.contourf(mn, md, loss, levels=20, cmap="magma_r", alpha=0.85)
    fig.colorbar(cs, ax=ax, label=f"fitted {column}")
    ax.scatter(n, d, c=frame[column], cmap="magma_r", edgecolor="w", s=30, zorder=3, gid="runs",
               vmin=cs.get_clim()[0], vmax=cs.get_clim()[1])
    if {"K_a", "K_b"} <= set(fit.derived):
        compute = np.geomspace(6 * gn.min() * gd.min(), 6 * gn.max() * gd.max(), 200)
        n_opt, d_opt = fit.predict_optimum(compute)
        ax.plot(n_opt, d_opt, color="cyan", lw=1.5, label="compute-optimal (N_opt, D_opt)", gid="frontier")
        ax.legend(fontsize=7, loc="upper left")
    ax.set(xscale="log", yscale="log", xlim=(gn[0], gn[-1]), ylim=(gd[0], gd[-1]),
           xlabel="parameters N", ylabel="tokens D", title=f"fitted {fit.law} law and runs")
    return fig


def plot_ci_convergence(history: pd.DataFrame, *, target_ci: float | None = None) -> Figure:
    """Watched CI half-widths of each online refit against the compute spent so far."""
    fig = new_figure()
    ax = fig.add_subplot()
    columns = [c for c in history.columns if c.startswith("ci_halfwidth.")]
    for col, style in zip(columns, ["o-", "s--", "^:", "d-."] * 4):
        ax.plot(history["flops_spent"], history[col], style, ms=4, mfc="none", label=col.removeprefix("ci_halfwidth."),
                gid=f"halfwidth:{col.removeprefix('ci_halfwidth.')}")
    if target_ci:
        ax.axhline(target_ci, color="k", ls=":", lw=1, label=f"target {target_ci:g}", gid="target")
    if not columns:
        ax.text(0.5, 0.5, "no online refits recorded", transform=ax.transAxes, ha="center")
    ax.set(xscale="log", yscale="log" if columns else "linear", xlabel="compute spent (FLOPs)",
           ylabel="CI half-width", title="convergence of the watched exponents")
    ax.legend(fontsize=7)
    return fig


def plot_residuals(frame: pd.DataFrame, fit, *, column: str = "loss") -> Figure:
    """log(observed) - log(fitted) per run against N, one colour per isoFLOP slice."""
    fig = new_figure()
    ax = fig.add_subplot()
    keys = slice_keys(frame)
    pred = fit.predict(frame["n_params"].to_numpy(float), frame["n_tokens"].to_numpy(float))
    resid = np.log(frame[column].to_numpy(float)) - np.log(pred)
    budgets = np.unique(keys)
    for colour, c in zip(_colours(len(budgets)), budgets):
        m = keys == c
        ax.scatter(frame["n_params"][m], resid[m], color=colour, s=20, label=f"C = {c:.2g}", gid=f"residuals:{c:.6g}")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="parameters N", ylabel="log observed - log fitted",
           title=f"residuals of the {fit.law} fit (rms {np.sqrt(np.mean(resid ** 2)):.2e})")
    ax.legend(fontsize=7)
    _mark_simulated(ax, frame)
    return fig
