"""`sweeper run` in a real pseudo-terminal: the sweep's own lines and nothing else.

A tiny simulated adaptive sweep prints the log-file line, one line per finished
trial (the status line redraws in place on the same terminal row), and the final
summary. No Ray banner, no Tune logger lines, no MLflow set-up, no warnings.
"""

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ROOT = Path(__file__).resolve().parents[2]


def run_in_pty(argv: list[str], cwd: Path, timeout_s: float = 900.0) -> tuple[int, str]:
    """Run argv with stdin/stdout/stderr on one pseudo-terminal; (exit code, everything it wrote)."""
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160", "TERM": "xterm"}
    for name in (
        "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS",
        "RAY_AIR_NEW_OUTPUT",
    ):  # the tool's defaults, not conftest's
        env.pop(name, None)
    proc = subprocess.Popen(
        argv, cwd=cwd, stdin=follower, stdout=follower, stderr=follower, env=env, start_new_session=True
    )
    os.close(follower)
    chunks, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(leader)
    try:
        code = proc.wait(timeout=max(deadline - time.monotonic(), 0) + 60)  # the terminal closes as it exits
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
        pytest.fail(
            "sweeper run did not finish in the pseudo-terminal:\n"
            + b"".join(chunks).decode("utf-8", "replace")[-3000:]
        )
    return code, b"".join(chunks).decode("utf-8", "replace")


def screen_lines(raw: str) -> list[str]:
    """What the terminal shows: each row's text after its last carriage return, ANSI codes removed."""
    rows = raw.replace("\r\n", "\n").split("\n")
    return [
        ANSI.sub("", row.split("\r")[-1]).rstrip()
        for row in rows
        if ANSI.sub("", row.split("\r")[-1]).strip()
    ]


def test_a_tiny_adaptive_sweep_prints_one_line_per_trial_then_the_summary(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweeper = [sys.executable, "-m", "sweeper.cli"]
    code, raw = run_in_pty(
        sweeper
        + [
            "run",
            "tiny",
            "--trainable",
            "simulated",
            "--budget",
            "2e14",
            "--design",
            "adaptive",
            "--target-ci",
            "0.05",
            "--tracking-uri",
            uri,
            "--experiment",
            "pty-test",
        ],
        cwd=tmp_path,
    )
    lines = screen_lines(raw)
    assert code == 0, "\n".join(lines[-30:])
    trial_lines = [x for x in lines if re.match(r"^\[\d+(/\d+)?\] \S+ (loss=|no loss)", x)]
    summary_at = next(
        i for i, x in enumerate(lines) if x.startswith("point ")
    )  # the summary's run table header
    before = lines[:summary_at]
    others = [x for x in before if x not in trial_lines]
    # the log-file line, the sweep's start line, and the status line left on screen when the sweep ends
    assert len(others) <= 4, "lines that are not the sweep's own:\n" + "\n".join(others)
    assert any(x.startswith("Ray and MLflow logs: ") for x in others)
    assert re.search(r"\[[#.]{10}\] \d+ trials \| \S+/2e14 FLOPs .*\| ETA ", raw), "no live status line"
    (tmp_path / "terminal.txt").write_text("\n".join(lines))
    assert all(not x.startswith("[") or "FLOPs" in x for x in others)
    n_trials = int(re.search(r"sweep \w+: (\d+) trials", raw).group(1))
    assert 0 < len(trial_lines) <= n_trials
    # the summary: one row per run, the fit, and where it is stored, and nothing from the libraries in it
    summary = lines[summary_at:]
    assert len(summary) <= n_trials + 40
    # no --target-compute: the prediction is made at 10x the largest slice, and says so
    assert any(x.startswith("prediction at C = ") and "10x the largest slice" in x for x in summary)
    for noise in (
        "Token authentication",
        "Started a local Ray",
        "tensorboard",
        "Failed to fetch metrics",
        "Warning",
        "alembic",
        "constrained_layout",
    ):
        assert noise.lower() not in raw.lower(), f"{noise!r} reached the terminal"
    log = Path(re.search(r"Ray and MLflow logs: (\S+)", raw).group(1))
    assert log.is_file()
