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
from sweeper.fit.isoflop import slice_keys, slice_optima
from sweeper.report.formatting import human

SIM_NOTE = "simulated runs (a known law plus noise), not training"
MAX_LEGEND_BUDGETS = 8  # more distinct budgets (an adaptive sweep has dozens) go on a colourbar


def new_figure(width: float = 6.4, height: float = 4.4) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _colours(n: int):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.05, 0.9, max(n, 1))]


def budget_colours(fig, ax, budgets: np.ndarray) -> tuple[list, bool]:
    """A colour per budget, and whether each budget gets a legend entry.

    Up to MAX_LEGEND_BUDGETS budgets are told apart in the legend; beyond that the
    legend would outgrow the axes, so the colour encodes log C on a colourbar instead.
    """
    if len(budgets) <= MAX_LEGEND_BUDGETS:
        return _colours(len(budgets)), True
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import FuncFormatter

    lo, hi = float(budgets.min()), float(budgets.max())
    norm, cmap = LogNorm(lo, hi if hi > lo else lo * 1.01), colormaps["viridis"]
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="budget C (FLOPs)")
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: human(v, 2)))
    bar.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    return [cmap(norm(c)) for c in budgets], False


def _plain_log_ticks(ax) -> None:
    """Log axes spanning less than a decade label minor ticks too; keep only the major ones, plainly."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda v, _: human(v, 3))
    # minor ticks at 2x and 5x only: every minor label crowds into its neighbours
    sparse = FuncFormatter(lambda v, _: human(v, 3) if f"{v:.0e}"[0] in "25" else "")
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log":
            continue
        axis.set_major_formatter(plain)
        # minor labels only where there are too few majors to read values off (under a decade)
        axis.set_minor_formatter(sparse if hi / lo < 10 else NullFormatter())


def _mark_simulated(ax, frame: pd.DataFrame) -> None:
    if "source" in frame and (frame["source"] == "simulated").any():
        ax.text(
            0.99, 0.01, SIM_NOTE, transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.4"
        )


def plot_isoflop(frame: pd.DataFrame, *, column: str = "loss", min_points: int = 3) -> Figure:
    """Loss against N on each isoFLOP slice, the parabola in log N fitted to it, and its vertex."""
    fig = new_figure()
    ax = fig.add_subplot()
    keys = slice_keys(frame)
    budgets = np.unique(keys)
    parabolas = {}
    colours, labelled = budget_colours(fig, ax, budgets)
    for colour, c in zip(colours, budgets):
        sub = frame[keys == c].sort_values("n_params")
        n, y = sub["n_params"].to_numpy(float), sub[column].to_numpy(float)
        ax.scatter(
            n,
            y,
            color=colour,
            s=22,
            zorder=3,
            label=f"C = {human(c, 2)}" if labelled else None,
            gid=f"runs:{c:.6g}",
        )
        if np.unique(n).size >= min_points:
            parabolas[c] = p = np.polyfit(np.log(n), y, 2)
            x = np.linspace(np.log(n.min()), np.log(n.max()), 100)
            ax.plot(np.exp(x), np.polyval(p, x), color=colour, lw=1.2, gid=f"parabola:{c:.6g}")
    opt = slice_optima(frame, column, min_points)
    if len(opt):
        at = [np.polyval(parabolas[c], np.log(n_opt)) for c, n_opt in zip(opt["budget"], opt["n_opt"])]
        ax.scatter(
            opt["n_opt"],
            at,
            marker="*",
            s=140,
            color="crimson",
            edgecolor="k",
            zorder=4,
            label="parabola minima",
            gid="minima",
        )
    ax.set(xscale="log", xlabel="parameters N", ylabel=column, title="isoFLOP curves (Approach 2)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    _plain_log_ticks(ax)
    _mark_simulated(ax, frame)
    return fig


def _allocation_grid(frame: pd.DataFrame, target_compute: float | None) -> np.ndarray:
    """Compute values to draw N_opt(C), D_opt(C) at: the runs' range, out to the target compute if set."""
    c_all = compute_of(frame)
    hi = max(c_all.max() * 2, target_compute * 1.5) if target_compute else c_all.max() * 2
    grid = np.geomspace(c_all.min() / 2, hi, 80)
    return np.unique(np.append(grid, target_compute)) if target_compute else grid


def plot_optimal_allocation(
    frame: pd.DataFrame,
    *,
    parametric=None,
    isoflop=None,
    column: str = "loss",
    n_boot: int = 200,
    seed: int = 0,
    target_compute: float | None = None,
    n_boot_parametric: int = 40,
) -> Figure:
    """N_opt(C) and D_opt(C): each slice's Approach-2 optimum with its bootstrap interval, the Approach-2
    power law and band, Approach 3's law with its bootstrap band, and both extrapolated to target_compute."""
    from sweeper.report.bands import isoflop_bootstrap, parametric_band

    fig = new_figure(10.4, 4.6)
    axes = fig.subplots(1, 2)
    compute = _allocation_grid(frame, target_compute)
    band, slice_ci = (
        isoflop_bootstrap(frame, compute, column=column, n_boot=n_boot, seed=seed)
        if isoflop is not None
        else ({}, pd.DataFrame())
    )
    identified3 = parametric is not None and getattr(parametric, "identified", True)
    band3 = (
        parametric_band(frame, parametric, compute, column=column, n_boot=n_boot_parametric, seed=seed)
        if identified3 and {"K_a", "K_b"} <= set(parametric.derived)
        else {}
    )
    for ax, name, label, key in ((axes[0], "n_opt", "N_opt", "a"), (axes[1], "d_opt", "D_opt", "b")):
        if isoflop is not None:
            _draw_approach2(ax, isoflop, compute, name, key, band.get(name), slice_ci)
        if parametric is not None and {"K_a", "K_b"} <= set(parametric.derived):
            _draw_approach3(ax, parametric, compute, name, key, band3.get(name), identified3)
        if target_compute:
            _draw_target(ax, compute, target_compute, parametric, name, band3.get(name), identified3)
        ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel=label, title=f"{label}(C)")
        ax.legend(fontsize=6.5, loc="upper left")
        _plain_log_ticks(ax)
    _mark_simulated(axes[1], frame)
    return fig


def _draw_approach2(ax, isoflop, compute, name, key, band, slice_ci) -> None:
    opt = pd.DataFrame(isoflop.extras.get("slices", {}))
    if len(opt):
        ax.scatter(
            opt["budget"],
            opt[name],
            color="crimson",
            marker="*",
            s=80,
            zorder=4,
            label="slice optima (Approach 2)",
            gid=f"minima:{name}",
        )
    if len(slice_ci):
        merged = opt.merge(slice_ci, on="budget") if len(opt) else slice_ci.iloc[:0]
        if len(merged):
            lower = np.clip(merged[name] - merged[f"{name}_lo"], 0, None)
            upper = np.clip(merged[f"{name}_hi"] - merged[name], 0, None)
            bars = ax.errorbar(
                merged["budget"],
                merged[name],
                yerr=[lower, upper],
                fmt="none",
                ecolor="crimson",
                elinewidth=1,
                capsize=2,
                zorder=3,
            )
            for part in bars.lines[2]:
                part.set_gid(f"slice_ci:{name}")
    k = isoflop.derived["K_a" if key == "a" else "K_b"]
    ci = isoflop.ci.get(key) if getattr(isoflop, "identified", True) else None
    shown = f" [{human(ci[0], 3)}, {human(ci[1], 3)}]" if ci else ""
    ax.plot(
        compute,
        k * compute ** isoflop.derived[key],
        color="crimson",
        lw=1.2,
        label=f"Approach 2: {key} = {human(isoflop.derived[key], 3)}{shown}",
        gid=f"approach2:{name}",
    )
    if band is not None:
        ax.fill_between(
            compute,
            band[0],
            band[1],
            color="crimson",
            alpha=0.12,
            lw=0,
            label="Approach 2, 95% band",
            gid=f"band:{name}",
        )


def _draw_approach3(ax, parametric, compute, name, key, band, identified) -> None:
    n_opt, d_opt = parametric.predict_optimum(compute)
    ci = parametric.ci.get(key) if identified else None
    shown = f" [{human(ci[0], 3)}, {human(ci[1], 3)}]" if ci else ("" if identified else " (not identified)")
    ax.plot(
        compute,
        n_opt if name == "n_opt" else d_opt,
        color="navy",
        lw=1.2,
        ls="--",
        label=f"Approach 3: {key} = {human(parametric.derived[key], 3)}{shown}",
        gid=f"approach3:{name}",
    )
    if band is not None:
        ax.fill_between(
            compute,
            band[0],
            band[1],
            color="navy",
            alpha=0.12,
            lw=0,
            label="Approach 3, 95% band",
            gid=f"band3:{name}",
        )


def _draw_target(ax, compute, target, parametric, name, band, identified) -> None:
    ax.axvline(
        target, color="0.3", ls=":", lw=1, label=f"target C = {human(target, 2)}", gid=f"target:{name}"
    )
    if parametric is None or not {"K_a", "K_b"} <= set(parametric.derived):
        return
    n_opt, d_opt = parametric.predict_optimum([target])
    value = float((n_opt if name == "n_opt" else d_opt)[0])
    at = int(np.argmin(np.abs(np.log(compute) - np.log(target))))
    yerr = None
    if band is not None:
        yerr = [[max(value - band[0][at], 0.0)], [max(band[1][at] - value, 0.0)]]
    ax.errorbar(
        [target],
        [value],
        yerr=yerr,
        fmt="o",
        color="navy",
        mfc="white",
        capsize=3,
        zorder=5,
        gid=f"extrapolated:{name}",
    )
    text = human(value, 3) + (
        f" [{human(band[0][at], 3)}, {human(band[1][at], 3)}]" if band is not None else ""
    )
    ax.annotate(
        text if identified else f"{human(value, 3)} (not identified)",
        (target, value),
        textcoords="offset points",
        xytext=(-6, -14),
        ha="right",
        fontsize=7,
        color="navy",
    )


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
    shown = f" [{human(ci[0], 3)}, {human(ci[1], 3)}]" if ci else ""
    ax.plot(
        grid,
        envelope.params["K"] * grid ** envelope.params["c"],
        color="darkorange",
        lw=1.5,
        label=f"L = {human(envelope.params['K'], 3)} C^{human(envelope.params['c'], 4)}{shown}",
        gid="envelope",
    )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="compute C (FLOPs)",
        ylabel=column,
        title="loss envelope L(C) (Approach 1)",
    )
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
    ax.scatter(
        n,
        d,
        c=frame[column],
        cmap="magma_r",
        edgecolor="w",
        s=30,
        zorder=3,
        gid="runs",
        vmin=cs.get_clim()[0],
        vmax=cs.get_clim()[1],
    )
    if {"K_a", "K_b"} <= set(fit.derived):
        compute = np.geomspace(6 * gn.min() * gd.min(), 6 * gn.max() * gd.max(), 200)
        n_opt, d_opt = fit.predict_optimum(compute)
        ax.plot(n_opt, d_opt, color="cyan", lw=1.5, label="compute-optimal (N_opt, D_opt)", gid="frontier")
        ax.legend(fontsize=7, loc="upper left")
    ax.set(
        xscale="log",
        yscale="log",
        xlim=(gn[0], gn[-1]),
        ylim=(gd[0], gd[-1]),
        xlabel="parameters N",
        ylabel="tokens D",
        title=f"fitted {fit.law} law and runs",
    )
    return fig


def plot_ci_convergence(history: pd.DataFrame, *, target_ci: float | None = None) -> Figure:
    """Watched CI half-widths of each online refit against the compute spent so far."""
    fig = new_figure()
    ax = fig.add_subplot()
    columns = [c for c in history.columns if c.startswith("ci_halfwidth.")]
    for col, style in zip(columns, ["o-", "s--", "^:", "d-."] * 4):
        ax.plot(
            history["flops_spent"],
            history[col],
            style,
            ms=4,
            mfc="none",
            label=col.removeprefix("ci_halfwidth."),
            gid=f"halfwidth:{col.removeprefix('ci_halfwidth.')}",
        )
    if target_ci:
        ax.axhline(target_ci, color="k", ls=":", lw=1, label=f"target {target_ci:g}", gid="target")
    if not columns:
        ax.text(0.5, 0.5, "no online refits recorded", transform=ax.transAxes, ha="center")
    ax.set(
        xscale="log",
        yscale="log" if columns else "linear",
        xlabel="compute spent (FLOPs)",
        ylabel="CI half-width",
        title="convergence of the watched exponents",
    )
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
    colours, labelled = budget_colours(fig, ax, budgets)
    for colour, c in zip(colours, budgets):
        m = keys == c
        ax.scatter(
            frame["n_params"][m],
            resid[m],
            color=colour,
            s=20,
            label=f"C = {human(c, 2)}" if labelled else None,
            gid=f"residuals:{c:.6g}",
        )
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set(
        xscale="log",
        xlabel="parameters N",
        ylabel="log observed - log fitted",
        title=f"residuals of the {fit.law} fit (rms {human(np.sqrt(np.mean(resid**2)), 3)})",
    )
    if labelled:
        ax.legend(fontsize=7)
    _plain_log_ticks(ax)
    _mark_simulated(ax, frame)
    return fig
