"""`sweeper report / compare / status` on a finished simulated sweep: the figures hold the runs' data."""

import base64
import json
import re

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from sweeper.cli import main
from sweeper.fit import isoflop_fit
from sweeper.report.sweep_report import log_report_artifacts, refit_history_from_mlflow, report_for_experiment

FIGURES = {"isoflop", "optimal_allocation", "envelope", "law_contours", "ci_convergence", "residuals"}


@pytest.fixture(scope="module")
def report(finished_sweep):
    _, uri, _ = finished_sweep
    return report_for_experiment("report-test", tracking_uri=uri)


def _artist(fig, gid):
    found = [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]
    assert found, f"no artist {gid!r} in the figure"
    return found[0]


def _pairs(xs, ys):
    return sorted(zip(np.round(np.log(np.asarray(xs, float)), 9), np.round(np.asarray(ys, float), 9)))


def test_isoflop_figure_holds_every_run_and_the_parabola_minima(finished_sweep, report):
    result, _, _ = finished_sweep
    frame = result.runs.ok().frame
    fig = report.figures["isoflop"]
    for budget, group in frame.groupby("budget"):
        points = _artist(fig, f"runs:{budget:.6g}").get_offsets()
        assert _pairs(points[:, 0], points[:, 1]) == _pairs(group["n_params"], group["loss"])
    minima = _artist(fig, "minima").get_offsets()
    expected = isoflop_fit(frame).extras["slices"]["n_opt"]
    assert np.allclose(sorted(minima[:, 0]), sorted(expected), rtol=1e-9)
    # each minimum is the lowest point of its own parabola
    for budget in frame["budget"].unique():
        x, y = _artist(fig, f"parabola:{budget:.6g}").get_data()
        assert y.min() <= frame.loc[frame["budget"] == budget, "loss"].min() + 1e-9


def test_envelope_contours_and_residuals_plot_the_run_table(finished_sweep, report):
    frame = finished_sweep[0].runs.ok().frame
    env = _artist(report.figures["envelope"], "runs").get_offsets()
    assert _pairs(env[:, 0], env[:, 1]) == _pairs(frame["flops"], frame["loss"])
    runs = _artist(report.figures["law_contours"], "runs").get_offsets()
    assert _pairs(runs[:, 0], np.log(runs[:, 1])) == _pairs(frame["n_params"], np.log(frame["n_tokens"]))
    resid = np.concatenate(
        [
            _artist(report.figures["residuals"], f"residuals:{b:.6g}").get_offsets()[:, 1]
            for b in frame["budget"].unique()
        ]
    )
    fit = finished_sweep[0].fit
    expected = np.log(frame["loss"]) - np.log(
        fit.predict(frame["n_params"].to_numpy(), frame["n_tokens"].to_numpy())
    )
    assert np.allclose(sorted(resid), sorted(expected), atol=1e-9)


def test_ci_convergence_plots_the_refits_logged_to_the_parent(finished_sweep, report):
    result, uri, _ = finished_sweep
    history = refit_history_from_mlflow(MlflowClient(uri), result.parent_run_id)
    assert len(history) >= 3
    x, y = _artist(report.figures["ci_convergence"], "halfwidth:a").get_data()
    # an early refit without a bootstrap interval is NaN on both sides, at the same point
    assert np.allclose(x, history["flops_spent"]) and np.allclose(
        y, history["ci_halfwidth.a"], equal_nan=True
    )


def test_optimal_allocation_draws_both_approaches(report):
    fig = report.figures["optimal_allocation"]
    for name in ("n_opt", "d_opt"):
        for gid in (f"minima:{name}", f"approach2:{name}", f"approach3:{name}", f"band:{name}"):
            _artist(fig, gid)


def test_report_command_writes_html_with_the_figures_embedded_and_the_fit_table(
    finished_sweep, report, tmp_path, capsys
):
    result, uri, _ = finished_sweep
    assert main(["report", "--experiment", "report-test", "--tracking-uri", uri, "--out", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    images = re.findall(r'<img alt="(\w+)" src="data:image/png;base64,([^"]+)"', page)
    assert {name for name, _ in images} == FIGURES
    for name, data in images:  # the page's images are exactly the figures checked above
        assert base64.b64decode(data) == report.png(name)
    a = result.fit.derived["a"]
    lo, hi = result.fit.ci["a"]
    assert f"{a:.4g} [{lo:.4g}, {hi:.4g}]" in page
    assert "simulated" in page
    markdown = (tmp_path / "report.md").read_text()
    assert "| early_fusion | average |" in markdown and "plots/isoflop.png" in markdown
    assert (tmp_path / "plots" / "isoflop.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "fits.json").read_text())[0]["parametric"]["derived"]["a"] == pytest.approx(
        a
    )


def test_log_report_artifacts_puts_the_plots_on_the_parent_run(finished_sweep):
    result, uri, _ = finished_sweep
    client = MlflowClient(uri)
    logged = log_report_artifacts(client, result.parent_run_id, result.runs, result.fit, None, target_ci=0.02)
    assert "report.html" in logged and "plots/isoflop.png" in logged
    stored = {a.path for a in client.list_artifacts(result.parent_run_id, "plots")}
    assert {f"plots/{n}.png" for n in FIGURES} <= stored


def test_status_and_compare_read_the_sweep_back(finished_sweep, capsys):
    result, uri, _ = finished_sweep
    assert main(["status", "--experiment", "report-test", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    n = len(result.runs)
    assert f"{n} done of {n} planned ({n} ok, 0 diverged), 0 running, 0 failed" in out
    assert "of 2e+14 FLOPs" in out and "a = " in out and "plan complete" in out
    assert main(["compare", result.parent_run_id, result.parent_run_id, "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert out.count(f"{result.fit.params['alpha']:.4g}") == 2


def test_compare_names_a_run_without_a_fit(finished_sweep, capsys):
    result, uri, _ = finished_sweep
    child = result.runs.frame["trial_id"].iloc[0]
    assert main(["compare", child, "--tracking-uri", uri]) == 2
    assert "no fit.json" in capsys.readouterr().err


def test_fit_command_refits_the_experiments_ok_runs(finished_sweep, capsys):
    result, uri, _ = finished_sweep
    assert (
        main(
            [
                "fit",
                "--experiment",
                "report-test",
                "--tracking-uri",
                uri,
                "--grid",
                "coarse",
                "--format",
                "json",
            ]
        )
        == 0
    )
    fit = json.loads(capsys.readouterr().out)
    assert fit["n_runs"] == len(result.runs.ok()) > 0
    assert fit["params"]["alpha"] == pytest.approx(result.fit.params["alpha"], rel=0.05)
