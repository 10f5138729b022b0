"""`sweeper schema`: its JSON Schema accepts every bundled search space and rejects a typo."""

import json

import jsonschema
import pytest
import yaml

from sweeper.cli import main
from sweeper.config.schema import SPACES_DIR, load_config

SPACES = sorted(SPACES_DIR.glob("*.yaml"))


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    out = tmp_path_factory.mktemp("schema") / "space.schema.json"
    assert main(["schema", "--output", str(out), "--quiet"]) == 0
    schema = json.loads(out.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.stem)
def test_every_bundled_space_validates_under_the_schema_and_the_loader(schema, path):
    raw = yaml.safe_load(path.read_text())
    jsonschema.validate(raw, schema)
    load_config(path)  # and the loader agrees


def test_the_schema_rejects_a_typo_and_a_wrong_type(schema):
    raw = yaml.safe_load((SPACES_DIR / "tiny.yaml").read_text())
    typo = {**raw, "training": {**raw["training"], "lr_rate": 1e-3}}
    with pytest.raises(jsonschema.ValidationError, match="lr_rate"):
        jsonschema.validate(typo, schema)
    wrong_type = {**raw, "budget": "lots"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong_type, schema)
    bad_choice = {**raw, "design": "random"}
    with pytest.raises(jsonschema.ValidationError, match="random"):
        jsonschema.validate(bad_choice, schema)


def test_schema_prints_json_to_stdout(capsys):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["additionalProperties"] is False
    assert "training" in printed["properties"]
