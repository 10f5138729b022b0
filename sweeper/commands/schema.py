"""`sweeper schema`: the JSON Schema of a search space, for editors and CI validation.

Generated from the schema's models (sweeper.config.schema), so it cannot drift from what
`load_config` accepts. Wire it into an editor with a first line in the YAML:
`# yaml-language-server: $schema=./sweeper-space.schema.json`.
"""

from __future__ import annotations

import json
import sys

from sweeper.commands.common import add_common_options

# The loader reads numbers written as strings ("1e22" from --set; PyYAML reads 6.0e12 as a string).
NUMERIC_STRING = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"


def register(sub) -> None:
    parser = sub.add_parser(
        "schema",
        help="print the JSON Schema of a search space (for editors and CI)",
        description="Validate a search space in an editor: save the output and add "
        "`# yaml-language-server: $schema=PATH` as the YAML's first line.",
    )
    parser.add_argument("--output", "-o", help="write the schema to this file instead of stdout")
    add_common_options(parser)
    parser.set_defaults(func=run)


def space_schema() -> dict:
    """The JSON Schema every search-space YAML must satisfy: unknown keys are rejected."""
    from sweeper.config.schema import SweepConfig

    schema = SweepConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sweeper search space"
    schema["properties"]["extends"] = {
        "type": "string",
        "description": "a base search space (YAML path relative to this file) whose keys this one overrides",
    }
    _accept_numeric_strings(schema)
    return schema


def _accept_numeric_strings(node) -> None:
    """Numbers may be written as numeric strings, as the loader accepts them."""
    if isinstance(node, dict):
        for value in node.values():
            _accept_numeric_strings(value)
        if node.get("type") == "number":
            node.pop("type")
            node["anyOf"] = [{"type": "number"}, {"type": "string", "pattern": NUMERIC_STRING}]
    elif isinstance(node, list):
        for value in node:
            _accept_numeric_strings(value)


def run(args) -> int:
    text = json.dumps(space_schema(), indent=2) + "\n"
    if args.output:
        with open(args.output, "w") as out:
            out.write(text)
        if not args.quiet:
            print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
