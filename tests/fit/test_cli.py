"""`sweeper fit`: output shape and exit code 2 with a named problem on bad input."""

import json

import numpy as np
import pytest

from sweeper.cli import main
from sweeper.fit import read_runs_csv
from sweeper.fit.synthetic import TABLE2_AVG, draw_losses, token_design


@pytest.fixture
def good_frame():
    frame = draw_losses(token_design(36, seed=0), TABLE2_AVG, noise=0.005, seed=0)
    return frame.rename(columns={"n_params": "N", "n_tokens": "Tokens", "loss": "LOSS"})


def test_json_output(tmp_path, good_frame, capsys):
    path = tmp_path / "runs.csv"
    good_frame.to_csv(path, index=False)
    assert (
        main(["fit", str(path), "--grid", "coarse", "--bootstrap", "4", "--seed", "1", "--format", "json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["law"] == "chinchilla" and out["n_runs"] == 36
    assert set(out["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert {"a", "b"} <= set(out["derived"]) and "alpha" in out["ci"]
    assert abs(out["params"]["beta"] - 0.335) < 0.05


def test_table_output(tmp_path, good_frame, capsys):
    path = tmp_path / "runs.csv"
    good_frame.to_csv(path, index=False)
    assert main(["fit", str(path), "--grid", "coarse"]) == 0
    assert "alpha" in capsys.readouterr().out


def test_aliases_normalised(tmp_path, good_frame):
    path = tmp_path / "runs.csv"
    good_frame.rename(columns={"N": "params", "Tokens": "n_tokens"}).to_csv(path, index=False)
    assert {"n_params", "n_tokens", "loss"} <= set(read_runs_csv(path).columns)


def _bad(frame, name):
    if name == "missing":
        return frame.drop(columns="LOSS")
    if name == "n_nonpositive":
        return frame.assign(N=np.where(np.arange(len(frame)) == 3, 0.0, frame["N"]))
    if name == "d_negative":
        return frame.assign(Tokens=np.where(np.arange(len(frame)) == 2, -5.0, frame["Tokens"]))
    if name == "loss_nan":
        return frame.assign(LOSS=np.where(np.arange(len(frame)) == 1, np.nan, frame["LOSS"]))
    if name == "loss_nonpositive":
        return frame.assign(LOSS=np.where(np.arange(len(frame)) == 1, -1.0, frame["LOSS"]))
    if name == "too_few_runs":
        return frame.head(4)
    if name == "text_in_n":
        return frame.assign(N=frame["N"].astype(object).where(frame.index != 0, "big"))
    raise AssertionError(name)


CASES = {
    "missing": "loss",
    "n_nonpositive": "n_params",
    "d_negative": "n_tokens",
    "loss_nan": "loss",
    "loss_nonpositive": "loss",
    "too_few_runs": "runs",
    "text_in_n": "n_params",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_naming_problem(tmp_path, good_frame, capsys, case):
    path = tmp_path / "bad.csv"
    _bad(good_frame, case).to_csv(path, index=False)
    assert main(["fit", str(path), "--grid", "coarse"]) == 2
    err = capsys.readouterr().err
    assert CASES[case] in err, err


def test_missing_file_and_unknown_law(tmp_path, good_frame, capsys):
    assert main(["fit", str(tmp_path / "nope.csv")]) == 2
    assert "FILE" in capsys.readouterr().err
    path = tmp_path / "runs.csv"
    good_frame.to_csv(path, index=False)
    assert main(["fit", str(path), "--law", "nope"]) == 2
    assert "law" in capsys.readouterr().err


def test_argparse_errors_exit_2(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "x.csv", "--format", "xml"])
    assert exc.value.code == 2
