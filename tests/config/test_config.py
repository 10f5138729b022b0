"""Config loading: defaults, overrides, and one clear error per bad field."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from sweeper.config.schema import SweepConfig, load_config
from sweeper.errors import SweeperInputError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_bundled_space_loads_with_its_name():
    cfg = load_config("tiny")
    assert cfg.space == "tiny"
    assert cfg.model.ladder == "tiny"
    assert cfg.experiment_name == "sweeper-tiny"


def test_overrides_by_alias_and_dotted_key(tmp_path):
    cfg = load_config(write(tmp_path, "budget: 1e12\n"), budget="2e12", lr=1e-3, **{"training.batch_size": 8})
    assert cfg.budget == 2e12
    assert cfg.training.lr == 1e-3
    assert cfg.training.batch_size == 8


def test_sim_law_string_parses_to_numbers(tmp_path):
    cfg = load_config(write(tmp_path, ""), sim_law="E=1.9,A=400,B=2000,alpha=0.34,beta=0.37")
    assert cfg.simulation.params == {"E": 1.9, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.37}


def test_config_is_frozen():
    cfg = SweepConfig()
    with pytest.raises(ValidationError, match="frozen"):
        cfg.budget = 1.0  # type: ignore[misc]


def test_tracking_uri_honours_environment(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert SweepConfig().tracking_uri == "http://127.0.0.1:5999"
    assert (
        SweepConfig(tracking=SweepConfig().tracking.__class__(uri="sqlite:///x.db")).tracking_uri
        == "sqlite:///x.db"
    )


@pytest.mark.parametrize(
    "text, field, words",
    [
        ("budgt: 1e12\n", "budgt", "unknown key; did you mean 'budget'?"),
        ("model:\n  kind: dense_text\n  layers: 4\n", "model.layers", "unknown key"),
        (
            "training:\n  checkpoint_evry: 10\n",
            "training.checkpoint_evry",
            "did you mean 'training.checkpoint_every'?",
        ),
        ("budget: -5\n", "budget", "positive"),
        ("budget: lots\n", "budget", "number"),
        ("budget: .nan\n", "budget", "finite"),
        ("seed: 1.5\n", "seed", "whole number"),
        ("design: random\n", "design", "allowed values"),
        ("training:\n  lr: 0\n", "training.lr", "positive"),
        ("training:\n  warmup_frac: 1.5\n", "training.warmup_frac", "[0, 1)"),
        ("training:\n  mixture: [0.5, 0.5]\n", "training.mixture", "3 values"),
        ("training:\n  mixture: [-1, 1, 1]\n", "training.mixture", ">= 0"),
        ("budgets:\n  ratio: 1\n", "budgets.ratio", "greater than 1"),
        ("budgets:\n  slices: [1e12, -1]\n", "budgets.slices[1]", "positive"),
        ("budget: 1e12\nbudgets:\n  slices: [1e12, 1e12]\n", "budgets.slices", "exceeds the total budget"),
        ("ray:\n  max_concurrent_trials: 0\n", "ray.max_concurrent_trials", "positive"),
        ("resume: yes please\n", "resume", "true or false"),
        ("fit:\n  n_bootstrap: -1\n", "fit.n_bootstrap", ">= 0"),
        ("fit:\n  target_compute: 0\n", "fit.target_compute", "must be positive (FLOPs"),
        ("fit:\n  watch: [a, b, log_L_opt]\n", "fit.watch", "--target-compute"),
        (
            "fit:\n  law: compression\n  target_compute: 1e20\n  watch: [a, b, log_L_opt]\n",
            "fit.watch",
            "not fit.law=compression",
        ),
        ("fit:\n  target_ci_log_L_opt: 0.01\n", "fit.target_ci_log_L_opt", "add log_L_opt to fit.watch"),
        ("simulation:\n  noise: -0.1\n", "simulation.noise", ">= 0"),
        ("fit:\n  law: chinchila\n", "fit.law", "did you mean chinchilla?"),
        (
            "model:\n  kind: moe\ndistributed:\n  enabled: true\n  zero_stage: 3\n",
            "distributed.zero_stage",
            "use zero_stage 2, or a mixture without text",
        ),
        ("model: dense\n", "model", "mapping"),
    ],
)
def test_each_bad_field_names_itself(tmp_path, text, field, words):
    with pytest.raises(SweeperInputError) as err:
        load_config(write(tmp_path, text))
    assert err.value.field == field
    assert words in str(err.value)


def test_yaml_that_is_not_a_mapping(tmp_path):
    with pytest.raises(SweeperInputError, match="must be a YAML mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))


def test_yaml_syntax_error_is_an_input_error(tmp_path):
    with pytest.raises(SweeperInputError, match="YAML syntax"):
        load_config(write(tmp_path, "budget: [1, 2\n"))


def test_unknown_space_lists_the_bundled_ones():
    with pytest.raises(SweeperInputError, match="tiny"):
        load_config("no_such_space")


def test_yaml_tags_are_not_executed(tmp_path):
    # yaml.safe_load refuses python object tags instead of constructing them.
    with pytest.raises(SweeperInputError, match="YAML syntax"):
        load_config(write(tmp_path, "budget: !!python/object/apply:os.system ['true']\n"))


def test_zero3_takes_an_image_model_whose_mixture_has_no_text(tmp_path):
    text = (
        "model:\n  kind: late_fusion\ndistributed:\n  enabled: true\n  zero_stage: 3\n"
        "training:\n  mixture: [0.5, 0.5, 0]\n"
    )
    assert load_config(write(tmp_path, text)).distributed.zero_stage == 3
