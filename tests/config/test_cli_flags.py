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

    args = build_parser().parse_args([command, "tiny", "--tracking-uri", "sqlite:///x.db", "--quiet",
                                      "--format", "json"])
    assert args.quiet and args.format == "json"
    assert overrides_from(args)["tracking_uri"] == "sqlite:///x.db"


def test_a_bad_format_names_the_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["status", "--format", "yaml"])
    assert exit_.value.code == 2 and "--format" in capsys.readouterr().err
