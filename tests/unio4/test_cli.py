"""The command line as a whole (unio4/cli.py): every command has --help, exact flags, one output flag and one
override scheme, and the commands recorded in shipped bundles' lineage still parse."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from unio4.cli import GROUPS, build_parser, main
from unio4.commands.options import TARGETS, overrides


def all_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """Every command path of the parser, walked from its subparsers (so none can be forgotten)."""
    found = [list(prefix)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += all_commands(sub, (*prefix, name))
    return found


COMMANDS = all_commands(build_parser())


def required_args(parser: argparse.ArgumentParser) -> list[str]:
    """Placeholder values for a command's positional and required arguments, so its other flags can be parsed."""
    argv: list[str] = []
    for action in parser._actions:
        if not action.option_strings and action.nargs != argparse.SUPPRESS and action.dest != "help":
            argv.append("X")
        elif action.required:
            argv += [action.option_strings[0], "X"]
    return argv


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "unio4")
def test_help_on_every_command(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*words, "--help"])
    assert exit_info.value.code == 0
    assert "usage: unio4" in capsys.readouterr().out


def test_console_script_is_installed() -> None:
    out = subprocess.run([Path(sys.executable).parent / "unio4", "--help"], capture_output=True, text=True, check=True).stdout
    assert "train" in out and "sim" in out


def test_version_exact_flags_defaults_and_suggestions(capsys: pytest.CaptureFixture[str]) -> None:
    """--version; no abbreviated flags; defaults in --help; 'did you mean' for a misspelt config key."""
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("unio4 ")
    with pytest.raises(SystemExit) as done:
        main(["train", "online", "--num-env", "2"])  # abbreviation of --num-envs: refused
    assert done.value.code == 2 and "unrecognized arguments: --num-env 2 (did you mean '--num-envs'?)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["trian", "online"])
    assert done.value.code == 2 and "(did you mean 'train'?)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["deploy", "--help"])
    assert "(default: 192.168.123.10:8007)" in capsys.readouterr().out
    assert main(["sim", "gait", "--set", "task.comands.lin_vel_x=[0,1]"]) == 2
    assert "unknown key 'comands' (did you mean 'commands'?" in capsys.readouterr().err


def test_a_backward_command_is_a_value_not_a_flag() -> None:
    """``--command -0.3,0,0`` (walk backwards) parses as the command it is, as does a negative number alone."""
    args = build_parser().parse_args(["deploy", "policy", "--command", "-0.3,0,0"])
    assert args.command_vel == "-0.3,0,0"
    assert build_parser().parse_args(["play", "policy", "--command", "-.5,0,-1e-1"]).command_vel == "-.5,0,-1e-1"


# Output flags other than -o/--out that commands once had, and per-config override flags: all gone.
RETIRED = {"--run-dir", "--dir", "--log-dir", "--workdir", "--json", "--video", "--trace", "--train-set", "--task-set"}


@pytest.mark.parametrize("words", [w for w in COMMANDS if w and w[0] not in GROUPS], ids=" ".join)
def test_one_output_flag_and_one_override_scheme(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Every command: exact flags only; its output (if any) is -o/--out; its overrides (if any) are --set TARGET.KEY=VALUE."""
    parser = build_parser()
    sub = parser
    for word in words:
        sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[word]
    assert not sub.allow_abbrev
    flags = {o for action in sub._actions for o in action.option_strings}
    assert not flags & RETIRED, flags & RETIRED
    out = [a for a in sub._actions if "--out" in a.option_strings]
    assert not out or out[0].option_strings == ["-o", "--out"]
    sets = [a for a in sub._actions if "--set" in a.option_strings]
    if sets:
        targets = sets[0].targets  # type: ignore[attr-defined]
        assert targets and set(targets) <= set(TARGETS)
        args = parser.parse_args([*words, *required_args(sub), "--set", f"{targets[0]}.a.b=1", "--set", f"{targets[-1]}.c=[1,2]"])
        assert overrides(args, targets[0])[0] == "a.b=1" and overrides(args, targets[-1])[-1] == "c=[1,2]"
        for bad, message in ((f"{targets[0]}x.a=1", "is not a config of this command"), ("a=1", "expected TARGET.KEY=VALUE")):
            with pytest.raises(SystemExit):
                parser.parse_args([*words, *required_args(sub), "--set", bad])
            assert message in capsys.readouterr().err


def lineage_commands(value: object) -> list[str]:
    """Every ``unio4 ...`` string of a manifest's lineage (nested mappings and lists included)."""
    if isinstance(value, str):
        return [value] if value.startswith("unio4 ") else []
    if isinstance(value, dict):
        return [c for item in value.values() for c in lineage_commands(item)]
    if isinstance(value, list):
        return [c for item in value for c in lineage_commands(item)]
    return []


def test_lineage_commands_in_manifests_are_runnable_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    """Each command a shipped bundle's lineage records parses with today's CLI (a trailing "(note)" aside)."""
    from unio4.cli import build_parser

    root = Path(__file__).resolve().parents[2]
    manifests = sorted(root.glob("pretrained/*/manifest.yaml"))
    assert manifests
    recorded = [(str(m.relative_to(root)), c) for m in manifests for c in lineage_commands(yaml.safe_load(m.read_text()).get("lineage"))]
    planned = [  # how pretrained/go1_flat is (re)made
        ("plan", "unio4 bench walk --well --task go1_walk_well --judge-task go1_flat --seeds 11 -o WALK"),
        ("plan", "unio4 export RUN/checkpoints/final.pt -o pretrained/go1_flat --force"),
    ]
    refused = []
    for where, command in [*planned, *recorded]:
        words = shlex.split(re.sub(r"\s*\([^()]*\)\s*$", "", command))
        assert words[0] == "unio4"
        try:
            build_parser().parse_args(words[1:])
        except SystemExit:
            error = capsys.readouterr().err.strip().splitlines()
            refused.append(f"{where}: {command!r}: {error[-1] if error else 'refused'}")
    assert not refused, "\n".join(refused)
