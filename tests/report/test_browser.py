"""The HTML report as a browser shows it (headless Chromium), for an adaptive and a grid sweep.

Checked: the page loads without console errors, every embedded plot decodes and
the screenshot is not blank, each legend stays inside its axes (matplotlib's own
extents), budgets beyond eight go on a colourbar, every number in the tables is
written for people (2e14, not 200000000000000.0 or 2e+14), the glossary is there,
and rendering raises no warning.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from sweeper.report.screenshots import dump_dom, find_chromium, screenshot
from sweeper.report.sweep_report import build_report
from sweeper.tracking.run_table import COLUMNS, RunTable

needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="headless Chromium is not installed (scripts/setup installs it: apt-get install chromium)",
)
NUMBER = re.compile(r"(?<![\w.\-])-?\d[\d.]*(?:[eE][+-]?\d+)?(?![\w.])")
FORMATTED = re.compile(r"^-?\d{1,5}(\.\d{1,4})?(e-?\d{1,3})?$")
LAW = dict(E=1.9, A=400.0, B=2000.0, alpha=0.34, beta=0.37)


def adaptive_like_table(n_budgets: int = 36, seed: int = 0) -> RunTable:
    """Runs the way an adaptive sweep places them: many budgets, one to five sizes on each, near the
    optimum."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, c in enumerate(np.geomspace(3e12, 3e14, n_budgets)):
        n_opt = 0.1 * (c / 6) ** 0.5
        for j, n in enumerate(n_opt * np.exp(rng.uniform(-1.2, 1.2, rng.integers(1, 6)))):
            d = c / (6 * n)
            loss = (LAW["E"] + LAW["A"] / n ** LAW["alpha"] + LAW["B"] / d ** LAW["beta"]) * np.exp(
                rng.normal(0, 0.003)
            )
            rows.append(
                {
                    "sweep_id": "adaptive",
                    "trial_id": f"t{i}-{j}",
                    "point_id": f"early_fusion-c{i}-n{j}",
                    "model_kind": "early_fusion",
                    "n_params": n,
                    "n_tokens": d,
                    "budget": c,
                    "flops": c,
                    "loss": loss,
                    "status": "ok",
                    "source": "simulated",
                    "design": "adaptive",
                }
            )
    frame = pd.DataFrame(rows)
    for column, (_, _, dtype) in COLUMNS.items():
        if column not in frame:
            frame[column] = np.nan if dtype == "float" else ""
    return RunTable(frame[list(COLUMNS)])


@pytest.fixture(scope="module")
def adaptive_report():
    from sweeper.fit import fit_law

    table = adaptive_like_table()
    assert table.frame["budget"].nunique() >= 30
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the report renders without a single warning
        fit = fit_law(table.ok().frame, n_bootstrap=10, grid="coarse")
        report = build_report(
            table, fit=fit, n_bootstrap=10, meta={"budget": "200000000000000.0"}, target_compute=1e18
        )
        for name in report.figures:
            report.png(name)
    return report


@pytest.fixture(scope="module")
def grid_report(finished_sweep):
    from sweeper.report.sweep_report import report_for_experiment

    _, uri, _ = finished_sweep
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = report_for_experiment("report-test", tracking_uri=uri)
        for name in report.figures:
            report.png(name)
    return report


def legends_inside_axes(report) -> list[str]:
    """Names of figures with a legend that reaches outside its axes (matplotlib's drawn extents)."""
    outside = []
    for name, fig in report.figures.items():
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is None:
                continue
            box, frame = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
            if (
                box.x0 < frame.x0 - 1
                or box.y0 < frame.y0 - 1
                or box.x1 > frame.x1 + 1
                or box.y1 > frame.y1 + 1
            ):
                outside.append(name)
    return outside


def table_numbers(page: str) -> list[str]:
    """Numbers in table cells; point ids (kind/size/C=..., the key MLflow runs are named by) are names."""
    cells = [
        c for c in re.findall(r"<td[^>]*>(.*?)</td>", page, flags=re.S) if not re.match(r"^[\w-]+/\S+$", c)
    ]
    return [n for cell in cells for n in NUMBER.findall(re.sub(r"<[^>]+>", " ", cell))]


def check_in_browser(report, tmp_path) -> None:
    paths = report.write(tmp_path)
    page = paths["html"].read_text()
    # Report which images decoded, from inside the page, into the DOM Chromium dumps.
    probe = (
        "<script>window.addEventListener('load', () => { document.body.dataset.images = "
        "[...document.images].map(i => i.complete ? i.naturalWidth : 0).join(','); });</script></body>"
    )
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", probe))
    dom, console = dump_dom(probed.as_uri(), virtual_time_ms=3000)
    assert console == [], f"console messages: {console}"
    widths = [int(w) for w in re.search(r'data-images="([\d,]*)"', dom).group(1).split(",")]
    assert len(widths) == len(report.figures) and all(w > 300 for w in widths), widths
    shot = tmp_path / "report.png"
    assert screenshot(paths["html"].as_uri(), shot, width=1300, height=2600) == []
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))[..., :3]
    # plots are drawn: a good share of the page is neither white nor one flat colour
    assert (pixels.min(axis=2) < 0.9).mean() > 0.05 and pixels.std() > 0.1


@needs_chromium
def test_adaptive_sweep_report_in_chromium(adaptive_report, tmp_path):
    check_in_browser(adaptive_report, tmp_path)


@needs_chromium
def test_grid_sweep_report_in_chromium(grid_report, tmp_path):
    check_in_browser(grid_report, tmp_path)


@pytest.mark.parametrize("which", ["adaptive_report", "grid_report"])
def test_legends_stay_inside_their_axes(which, request):
    report = request.getfixturevalue(which)
    assert legends_inside_axes(report) == []


def test_many_budgets_go_on_a_colourbar_not_the_legend(adaptive_report, grid_report):
    iso = adaptive_report.figures["isoflop"]
    assert len(iso.axes) == 2 and "budget" in iso.axes[1].get_ylabel()  # the colourbar's axes
    assert len(iso.axes[0].get_legend().get_texts()) == 1  # only "parabola minima"
    grid = grid_report.figures["isoflop"]
    budgets = len(grid_report.runs["budget"].unique())
    assert len(grid.axes) == 1 and len(grid.axes[0].get_legend().get_texts()) == budgets + 1


@pytest.mark.parametrize("which", ["adaptive_report", "grid_report"])
def test_every_number_in_the_tables_is_formatted_for_people(which, request, tmp_path):
    report = request.getfixturevalue(which)
    page = report.html()
    numbers = table_numbers(page)
    assert len(numbers) > 50
    bad = sorted({n for n in numbers if not FORMATTED.match(n)})
    assert bad == [], f"numbers not formatted: {bad[:20]}"
    assert "200000000000000" not in page


def test_glossary_and_allocation_panels(adaptive_report):
    page = adaptive_report.html()
    for name in ("G", "K_a", "K_b", "d", "K_d", "n", "dn", "c", "E"):
        assert f"<th>{name}</th>" in page, name
    assert "_regression" in page and "Table 9" in page
    fig = adaptive_report.figures["optimal_allocation"]
    gids = {a.get_gid() for ax in fig.axes for a in ax.get_children()}
    for name in ("n_opt", "d_opt"):
        assert {
            f"minima:{name}",
            f"slice_ci:{name}",
            f"band:{name}",
            f"band3:{name}",
            f"approach3:{name}",
            f"target:{name}",
            f"extrapolated:{name}",
        } <= gids, gids
