"""Every subcommand takes the same output flags: --quiet, --format and --tracking-uri."""

import pytest

from sweeper.cli import COMMANDS, build_parser, main


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_shows_the_shared_flags_in_its_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    for flag in ("--quiet", "--format", "--tracking-uri"):
        assert flag in shown, f"`sweeper {command} --help` lacks {flag}"


@pytest.mark.parametrize("command", ["plan", "run", "tune"])
def test_space_commands_pass_the_tracking_uri_to_the_config(command):
    from sweeper.commands.common import overrides_from

    args = build_parser().parse_args(
        [command, "tiny", "--tracking-uri", "sqlite:///x.db", "--quiet", "--format", "json"]
    )
    assert args.quiet and args.format == "json"
    assert overrides_from(args)["tracking_uri"] == "sqlite:///x.db"


def test_a_bad_format_names_the_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["status", "--format", "yaml"])
    assert exit_.value.code == 2 and "--format" in capsys.readouterr().err


def test_space_flags_come_from_the_schema(capsys):
    from sweeper.commands.common import overrides_from
    from sweeper.config.schema import FLAGS, field_at, load_config

    with pytest.raises(SystemExit):
        main(["plan", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for name in FLAGS:  # each flag's help is its key's description in the schema
        assert "--" + name.replace("_", "-") in shown
        assert " ".join(field_at(name).description.split()) in shown
    args = build_parser().parse_args(
        [
            "plan",
            "tiny",
            "--budget",
            "2e13",
            "--target-ci",
            "0.05",
            "--sim-law",
            "E=2,A=300,B=1000,alpha=0.3,beta=0.3",
        ]
    )
    cfg = load_config(args.space, **overrides_from(args))
    assert (cfg.budget, cfg.fit.target_ci, cfg.simulation.params["A"]) == (2e13, 0.05, 300.0)


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--target-ci", "-1"], "fit.target_ci: got -1; must be positive"),
        (["--seed", "1.5"], "seed: got 1.5; expected a whole number"),
        (["--budget", "lots"], "budget: got 'lots'; expected a number"),
    ],
)
def test_a_bad_flag_value_exits_2_naming_its_key(flags, words, capsys):
    assert main(["plan", "tiny", "--quiet", *flags]) == 2
    assert words in capsys.readouterr().err
