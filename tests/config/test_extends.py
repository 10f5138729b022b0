"""Search spaces that extend a base, and the fully resolved config: dumped, it reloads to an equal config."""

from __future__ import annotations

import pytest
import yaml

from sweeper.cli import main
from sweeper.config.schema import SPACES_DIR, load_config
from sweeper.errors import SweeperInputError

SPACES = sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


@pytest.mark.parametrize("name", SPACES)
def test_every_bundled_space_dumps_and_reloads_to_an_equal_config(tmp_path, name):
    cfg = load_config(name)
    (tmp_path / "resolved.yaml").write_text(cfg.to_yaml())
    assert load_config(str(tmp_path / "resolved.yaml")) == cfg
    assert "extends" not in cfg.to_yaml()


def test_a_space_overrides_its_base_key_by_key(tmp_path):
    (tmp_path / "base.yaml").write_text(
        yaml.safe_dump(
            {
                "model": {"kind": "early_fusion", "sizes": ["tiny-1", "tiny-2"]},
                "budget": 1e12,
                "training": {"lr": 1e-3, "eval_every": 7},
                "tune": {"space": {"lr": {"dist": "loguniform", "low": 1e-4, "high": 1e-2}}},
            }
        )
    )
    (tmp_path / "child.yaml").write_text(
        yaml.safe_dump(
            {
                "extends": "base.yaml",
                "model": {"sizes": ["tiny-3"]},
                "training": {"lr": 2e-3},
                "tune": {"space": {"batch_tokens": {"dist": "choice", "values": [4096, 8192]}}},
            }
        )
    )
    cfg = load_config(str(tmp_path / "child.yaml"))
    assert cfg.model.kind == "early_fusion" and cfg.model.sizes == ("tiny-3",)  # lists replace
    assert cfg.training.lr == 2e-3 and cfg.training.eval_every == 7 and cfg.budget == 1e12
    assert set(cfg.tune.space) == {"lr", "batch_tokens"}  # mappings merge
    assert cfg.space == "child"


def test_a_missing_or_circular_base_is_named(tmp_path):
    (tmp_path / "lost.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(SweeperInputError, match="no such search space") as err:
        load_config(str(tmp_path / "lost.yaml"))
    assert err.value.field == "lost.yaml: extends" and err.value.value == "nowhere.yaml"
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nbudget: 1.0e12\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(SweeperInputError, match=r"circular \(a.yaml -> b.yaml -> a.yaml\)"):
        load_config(str(tmp_path / "a.yaml"))


def test_plan_shows_the_resolved_space_that_reproduces_it(tmp_path, capsys):
    assert main(["plan", "early_fusion", "--budget", "1e21", "--show-config", "--format", "json"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)["config"]
    (tmp_path / "shown.yaml").write_text(yaml.safe_dump(shown))
    assert load_config(str(tmp_path / "shown.yaml")) == load_config("early_fusion", budget=1e21)
