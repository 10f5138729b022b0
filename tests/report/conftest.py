"""A finished simulated sweep in a temporary SQLite store, shared by the report tests."""

import os

import pytest

# Two isoFLOP slices whose simulated minima lie inside the sizes tried (so Approach 2 can fit).
SLICES = [4.7e12, 1.9e13]


@pytest.fixture(scope="module")
def finished_sweep(ray_local, tmp_path_factory):
    from sweeper import Sweeper

    root = tmp_path_factory.mktemp("report")
    uri = f"sqlite:///{root}/mlflow.db"
    here = os.getcwd()
    os.chdir(root)  # Tune's local storage (.sweeper/) goes to the temporary folder
    try:
        sweeper = Sweeper(
            "tiny",
            trainable="simulated",
            budget=2e14,
            slices=SLICES,
            tracking_uri=uri,
            experiment="report-test",
            n_bootstrap=10,
        )
        plan = sweeper.plan()
        result = sweeper.run(progress=lambda line: None)
    finally:
        os.chdir(here)
    assert len(result.runs) == len(plan.trials)
    return result, uri, root
