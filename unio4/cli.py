"""The ``unio4`` command line: the root parser over one module per command (:mod:`unio4.commands`).

Each command module holds its flags (``add_arguments``) beside its handler (``run``); this module only
wires them into ``unio4 <group> <command>`` and turns the expected failures (a bad config, a bad
file, a missing optional package) into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

from unio4.commands import (
    bench_deploy,
    bench_learning,
    bench_walk,
    collect,
    data_export,
    data_generate,
    data_import,
    data_pack,
    data_stats,
    demo,
    deploy,
    emulate,
    evaluate,
    export,
    flash,
    identify,
    listing,
    play,
    replay,
    robot_export,
    session,
    sim_bench,
    sim_gait,
    train_bc,
    train_offline,
    train_online,
)
from unio4.commands.options import suggest
from unio4.configs.command_line import run_reporting_errors
from unio4.learning.run_dir import installed_version

# Command modules in the order ``unio4 --help`` lists them; two-word commands live in a group.
COMMANDS: tuple[ModuleType, ...] = (
    sim_bench,
    sim_gait,
    train_online,
    train_offline,
    train_bc,
    collect,
    export,
    robot_export,
    emulate,
    deploy,
    evaluate,
    play,
    replay,
    session,
    identify,
    flash,
    data_pack,
    data_import,
    data_generate,
    data_export,
    data_stats,
    bench_deploy,
    bench_learning,
    bench_walk,
    listing,
    demo,
)
GROUPS = {
    "sim": "simulate the Go1 task: benchmarks, the built-in gait",
    "train": "train policies",
    "robot": "robot descriptions",
    "data": "datasets: pack robot logs, import walk-these-ways logs, generate D4RL-style sets, export to Minari, statistics",
    "bench": "benchmarks that print numbers",
}


class _Formatter(argparse.HelpFormatter):
    """``--help`` shows each option's default, unless it is empty or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        empty = default is None or default is False or default == [] or default == argparse.SUPPRESS
        if "default" in text or empty or not action.option_strings:
            return text
        return f"{text} (default: {default})".strip()


class _Parser(argparse.ArgumentParser):
    """No abbreviated flags, defaults in ``--help``, and "did you mean" on a mistyped command or flag."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False, formatter_class=_Formatter, **kwargs)
        # a value that starts with a minus and a digit is a number, or a list of them ("--command -0.3,0,0"); argparse's
        # own pattern takes "-0.3" for a value but "-0.3,0,0" for an unknown flag
        self._negative_number_matcher = re.compile(r"^-\.?\d[\d.,eE+-]*$")

    def error(self, message: str) -> NoReturn:
        bad = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if bad:
            message += suggest(bad.group(1), re.findall(r"'([^']*)'", bad.group(2)))
        command = self.prog.removeprefix("unio4").strip()  # one line, naming the command; its usage is in --help
        self.exit(2, f"unio4: error: {command + ': ' if command else ''}{message} (see {self.prog} --help)\n")

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # name the unknown flags to the command that got them, with the closest flag it has
            parser: argparse.ArgumentParser = getattr(parsed, "parser", self)
            flags = [o for action in parser._actions for o in action.option_strings]
            hints = "".join(suggest(x.split("=")[0], flags) for x in extras if x.startswith("-"))
            parser.error(f"unrecognized arguments: {' '.join(extras)}{hints}")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="unio4", description="Uni-O4 for the Unitree Go1: logged data -> policy -> sim -> robot.")
    parser.add_argument("--version", action="version", version=f"unio4 {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for module in COMMANDS:
        words: tuple[str, ...] = module.WORDS
        parent = sub
        if len(words) == 2:
            if words[0] not in groups:
                group = sub.add_parser(words[0], help=GROUPS[words[0]])
                groups[words[0]] = group.add_subparsers(dest=f"{words[0]}_command", required=True, metavar="COMMAND")
            parent = groups[words[0]]
        p = parent.add_parser(words[-1], help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        for action in p._actions:  # a flag without help text still shows its default
            if action.help is None and action.option_strings and action.default is not None and action.default is not False:
                action.help = f"(default: {action.default})"
        p.set_defaults(func=module.run, parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from unio4.sim.render import use_offscreen_gl

    use_offscreen_gl()  # before anything imports mujoco: headless rendering (replay --render, demo)
    args = build_parser().parse_args(argv)
    return run_reporting_errors(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
