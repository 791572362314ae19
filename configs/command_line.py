"""What every command-line entry shares (``unio4``'s commands, ``python -m unio4.deploy.rollout``,
``python -m unio4.sim.emulator``): the ``--set`` override flag, the UDP port type, and failures
reported as one line with an exit code instead of a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from unio4.configs.loader import did_you_mean


class SetAction(argparse.Action):
    """Collects ``--set TARGET.KEY=VALUE`` into ``{target: ["KEY=VALUE", ...]}``, refusing unknown targets."""

    def __init__(self, *args: Any, targets: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.targets = tuple(targets)

    def __call__(self, parser: argparse.ArgumentParser, ns: argparse.Namespace, value: Any, option: str | None = None) -> None:
        target, dot, rest = str(value).partition(".")
        names = ", ".join(self.targets)
        if not dot or "=" not in rest or rest.startswith("="):
            parser.error(f"--set {value!r}: expected TARGET.KEY=VALUE, TARGET one of {names}")
        if target not in self.targets:
            hint = did_you_mean(target, self.targets)
            parser.error(f"--set {value!r}: {target!r} is not a config of this command{hint}; TARGET is one of {names}")
        sets = dict(getattr(ns, self.dest) or {})
        sets[target] = [*sets.get(target, []), rest]
        setattr(ns, self.dest, sets)


def port_number(text: str) -> int:
    """An argparse type: a UDP port, 0-65535 (0: any free one)."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a UDP port 0-65535, got {value}")
    return value


def one_line(exc: BaseException) -> str:
    """An error's message on one line (its lines joined by "; "), or its type's name when it has none."""
    return "; ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip()) or type(exc).__name__


def run_reporting_errors(run: Callable[[], int], prog: str = "unio4") -> int:
    """``run()``'s exit code; a user error (bad file, value, host; a missing package) is one line and 2,
    Ctrl-C is 130, a bug is one line and 1 (its traceback with ``UNIO4_DEBUG=1``)."""
    try:
        return int(run())
    except (OSError, ValueError, ImportError) as exc:  # a ConfigError is a ValueError
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug, not a user error: still one line, the traceback on request
        if os.environ.get("UNIO4_DEBUG") == "1":
            traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"{prog}: error: {type(exc).__name__}: {first} (unexpected; rerun with UNIO4_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
