"""Identification: a table that cannot pin the law down says so, with null intervals;
the reference's Table 2 law and every published table say identified."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweeper.cli import main
from sweeper.fit import fit_law, read_runs_csv
from sweeper.fit.synthetic import TABLE2_AVG, draw_losses, isoflop_design, token_design

SHARED = Path(__file__).resolve().parents[3] / "shared" / "scaling-data"
BUDGETS = [1e19, 3e19, 1e20, 3e20, 1e21]


def _one_size():
    return draw_losses(token_design(30, sizes=(1e9,)), TABLE2_AVG, seed=1)


def _one_token_count_per_size():
    frame = pd.DataFrame({"n_params": np.geomspace(1e8, 1e10, 20)})
    frame["n_tokens"] = 20.0 * frame["n_params"]
    return draw_losses(frame, TABLE2_AVG, seed=2)


def _rising_with_n():
    frame = isoflop_design(BUDGETS)
    noise = 0.003 * np.random.default_rng(3).standard_normal(len(frame))
    return frame.assign(loss=2.0 + 0.1 * np.log(frame["n_params"] / 1e8) + noise)


def _pure_noise():
    frame = isoflop_design(BUDGETS)
    return frame.assign(loss=3.0 + 0.05 * np.random.default_rng(4).standard_normal(len(frame)))


DEGENERATE = {
    "one size": _one_size,
    "one D per size": _one_token_count_per_size,
    "rising with N": _rising_with_n,
    "pure noise": _pure_noise,
}


@pytest.mark.parametrize("case", sorted(DEGENERATE))
def test_degenerate_table_is_not_identified_and_has_null_intervals(tmp_path, capsys, case):
    path = tmp_path / "runs.csv"
    DEGENERATE[case]().to_csv(path, index=False)
    assert main(["fit", str(path), "--grid", "coarse", "--bootstrap", "20", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["identified"] is False
    assert out["warnings"] and all(isinstance(w, str) and w for w in out["warnings"])
    reported = {**out["params"], **out["derived"]}
    assert {"alpha", "beta"} <= set(reported)
    for name in ("alpha", "beta", "a", "b"):  # a, b are absent when an exponent is <= 0
        if name in reported:
            assert out["ci"].get(name, "absent") is None, (name, out["ci"].get(name))


def test_table_output_of_a_degenerate_fit_says_not_identified(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    _rising_with_n().to_csv(path, index=False)
    assert main(["fit", str(path), "--grid", "coarse", "--bootstrap", "10"]) == 0
    out = capsys.readouterr().out
    assert "NOT IDENTIFIED" in out and "not identified" in out
    assert "minimum inside its sizes" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:] if line and line[0].isalpha()}
    for name in ("alpha", "beta"):  # no number that could be read as the answer
        assert rows[name] == ["not", "identified"], rows[name]


def test_summary_of_an_unidentified_fit_shows_no_exponent():
    from sweeper.fit import fit_law
    from sweeper.report.summary import format_fit, law_line

    fit = fit_law(_rising_with_n(), grid="coarse", n_bootstrap=10)
    line = law_line(fit)
    assert not fit.identified and "not identified" in line
    shown, _, reasons = line.partition(" runs): ")  # the reasons may quote the offending value
    assert "α =" not in shown and "β =" not in shown and "not identified" in shown and reasons
    table = {line.split()[0]: line.split()[1:] for line in format_fit(fit)[1:] if line.startswith("  ")}
    assert {"alpha", "beta"} <= set(fit.unidentified)
    for name in fit.unidentified:  # the run summary's fit table: no value for what is not identified
        assert table[name] == ["not", "identified"], (name, table[name])
    assert format_fit(None, "sparsity: got None; needs a 'sparsity' column") == [
        "fit: none (sparsity: got None; needs a 'sparsity' column)"
    ]


@pytest.mark.parametrize("design", ["isoflop", "tokens"])
def test_table2_law_is_identified_with_finite_intervals(design):
    frame = isoflop_design(BUDGETS) if design == "isoflop" else token_design(60)
    fit = fit_law(draw_losses(frame, TABLE2_AVG, noise=0.005), n_bootstrap=30, seed=0)
    assert fit.identified, fit.warnings
    assert fit.warnings == () and fit.unidentified == ()
    assert all(np.isfinite(fit.ci_halfwidth(k)) for k in ("alpha", "beta", "a", "b"))


def _published():
    if not SHARED.is_dir():
        pytest.skip(f"published tables not found at {SHARED}")
    for name in (
        "chinchilla_epoch",
        "gemstones",
        "misfitting",
        "porian",
        "marin_isoflop",
        "xlstm_llama_isoflop",
    ):
        frame = read_runs_csv(SHARED / f"{name}.csv")
        if "lr_opt" in frame:
            frame = frame[frame["lr_opt"] == 1]  # the best learning rate per (N, D)
        group = next((g for g in ("setting", "dataset") if g in frame), None)
        if group is None:
            yield name, frame
            continue
        for value, sub in frame.groupby(group):
            yield f"{name}:{value}", sub.drop(columns=[group])


def test_every_published_table_is_identified():
    verdicts = {name: fit_law(frame, n_bootstrap=20, seed=0) for name, frame in _published()}
    assert len(verdicts) >= 9
    bad = {name: fit.warnings for name, fit in verdicts.items() if not fit.identified}
    assert not bad, bad


def test_unidentified_quantities_have_infinite_halfwidth_and_round_trip():
    fit = fit_law(_rising_with_n(), grid="coarse", n_bootstrap=10, seed=0)
    assert not fit.identified and "alpha" in fit.unidentified
    assert fit.ci_halfwidth("alpha") == np.inf
    again = type(fit).from_dict(json.loads(json.dumps(fit.to_dict(), default=float)))
    assert again.identified is False and again.warnings == fit.warnings
    assert set(again.unidentified) == set(fit.unidentified)
