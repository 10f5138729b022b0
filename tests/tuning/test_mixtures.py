"""A mixture sweep of the tiny early-fusion model over two mixtures: per-target fits each, side by side."""

import mlflow

from sweeper.config.schema import load_config
from sweeper.tuning.mixtures import run_mixture_study


def test_two_mixtures_give_per_target_fits_compared_side_by_side(ray_local, tracking_uri, tmp_path):
    cfg = load_config(
        "tiny_mixtures",
        tracking_uri=tracking_uri,
        **{
            "ray.storage_path": str(tmp_path / "ray"),
            "model.sizes": ["tiny-1", "tiny-2", "tiny-3"],
            "budgets.slices": [6e9, 1.2e10],
            "budgets.min_steps": 20,
            "training.eval_every": 1000,
        },
    )
    study = run_mixture_study(cfg, progress=lambda line: None)
    assert list(study.fits) == ["45-45-10", "20-40-40"]
    for mixture, fits in study.fits.items():
        assert {"average", "caption", "interleaved", "text"} <= set(fits), mixture
        assert all(f.n_runs == 6 for f in fits.values())
    table = study.table()
    for mixture in study.fits:
        for target in ("average", "caption", "interleaved", "text"):
            assert any(
                line.startswith(mixture) and target in line and "(no fit)" not in line
                for line in table.splitlines()
            )
    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(study.study_run_id)
    assert run.data.tags["sweeper.role"] == "mixture_study"
    assert "45-45-10.caption.alpha" in run.data.metrics
    for mixture, sweep in study.sweeps.items():
        assert client.get_run(sweep.parent_run_id).data.tags["sweeper.mixture"] == mixture


def test_a_mixture_study_refuses_resume_and_says_how_to_resume_a_mixture(tracking_uri):
    import pytest

    from sweeper.errors import SweeperInputError

    cfg = load_config("tiny_mixtures", tracking_uri=tracking_uri, resume=True)
    with pytest.raises(SweeperInputError, match=r"resume.*--sweep-id ID --set 'training.mixture="):
        run_mixture_study(cfg, progress=lambda line: None)
