import pytest

SIM = {
    "E": 1.9,
    "A": 400.0,
    "B": 2000.0,
    "alpha": 0.34,
    "beta": 0.37,
    "lr_K": 0.5,
    "lr_a": -0.15,
    "lr_k": 0.05,
    "bt_K": 8.0,
    "bt_a": 0.2,
    "bt_k": 0.02,
    "noise": 0.0,
}


@pytest.fixture
def sim_law():
    return dict(SIM)


@pytest.fixture
def tune_overrides(tracking_uri, tmp_path):
    """A tiny early-fusion space with fast evaluations; MLflow and Tune state under tmp_path."""
    return {
        "kind": "early_fusion",
        "tracking_uri": tracking_uri,
        "ray.storage_path": str(tmp_path / "ray"),
        "budget": 1e15,
        "training.batch_size": 2,
        "training.eval_every": 20,
        "training.eval_batches": 1,
        "budgets.min_tokens_per_param": 0.5,
        "fit.n_bootstrap": 50,
    }
