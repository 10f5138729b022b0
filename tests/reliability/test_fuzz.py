"""Fuzzed config files and CSV tables: a clear message and exit code 2, never a traceback."""

import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sweeper.cli import main

KEYS = [
    "budget",
    "seed",
    "design",
    "trainable",
    "model",
    "budgets",
    "training",
    "fit",
    "ray",
    "tracking",
    "bogus",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(string.printable, max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["kind", "lr", "slices", "n_slices", "x"]), inner, max_size=3),
    ),
    max_leaves=6,
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run_cli(args, capsys) -> int:
    code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith(f"sweeper {args[0]}: error:")
    return code


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=4))
def test_fuzzed_yaml_mappings_plan_or_fail_cleanly(tmp_path, capsys, document):
    import yaml

    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(document))
    assert run_cli(["plan", str(path)], capsys) in (0, 2)


@FUZZ
@given(st.text(string.printable, max_size=200))
@example("0:")  # a number as a key (hypothesis found it: a TypeError, not a clean exit 2)
@example("~: 1")
def test_fuzzed_yaml_text_plans_or_fails_cleanly(tmp_path, capsys, text):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    assert run_cli(["plan", str(path)], capsys) in (0, 2)


cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 10**12),
    st.text(string.printable, max_size=6),
    st.just(""),
)


@FUZZ
@given(
    st.lists(
        st.sampled_from(["N", "D", "loss", "params", "tokens", "flops", "target", "x"]),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    st.lists(st.lists(cells, min_size=4, max_size=4), max_size=12),
)
def test_fuzzed_csv_fits_or_fails_cleanly(tmp_path, capsys, header, rows):
    path = tmp_path / "runs.csv"
    lines = [",".join(header)] + [
        ",".join(str(c).replace(",", ";").replace("\n", " ") for c in row[: len(header)]) for row in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    assert run_cli(["fit", str(path), "--grid", "coarse"], capsys) in (0, 2)


def test_a_number_as_a_key_is_named_with_the_fix(tmp_path, capsys):
    path = tmp_path / "space.yaml"
    path.write_text("budget: 1e12\n0: 3\n")
    assert main(["plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert "key 0" in err and "setting names" in err
