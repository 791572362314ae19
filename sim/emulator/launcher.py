"""Start the emulator in a process of its own and learn the UDP port it bound (tests, sessions, benchmarks)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence

MODULE = "unio4.sim.emulator"  # its __main__ takes the flags of `unio4 emulate`


def spawn(args: Sequence[str] = ()) -> tuple[subprocess.Popen[str], int]:
    """Start ``python -m unio4.sim.emulator --port 0 ARGS`` (``ARGS``: flags of ``unio4 emulate``) and return
    the process and the UDP port it bound.

    Stop it with SIGINT (it then writes its trace and a closing line of statistics).
    """
    proc, go1, _ = _start(args)
    return proc, go1


def spawn_with_tracker(args: Sequence[str] = ()) -> tuple[subprocess.Popen[str], int, int]:
    """:func:`spawn` with the emulated tracking camera on (``--tracker-port 0``): the process, the Go1's UDP
    port and the tracker's.
    """
    proc, go1, tracker = _start(["--tracker-port", "0", *args])
    if tracker is None:
        proc.kill()
        raise RuntimeError("the emulator did not say its tracker's port")
    return proc, go1, tracker


def _start(args: Sequence[str]) -> tuple[subprocess.Popen[str], int, int | None]:
    """The started emulator, its Go1's port and its tracker's (None: no tracker), read from its first lines."""
    proc = subprocess.Popen(
        [sys.executable, "-m", MODULE, "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    lines: list[str] = []
    tracker: int | None = None
    while len(lines) < 10 and (line := proc.stdout.readline()):  # physics engines may print a banner first
        lines.append(line)
        if match := re.search(r"tracking camera on udp://[\d.]+:(\d+)", line):
            tracker = int(match.group(1))
        elif match := re.search(r"Go1 on udp://[\d.]+:(\d+)", line):
            return proc, int(match.group(1)), tracker
    proc.kill()
    raise RuntimeError(f"the emulator did not start: {''.join(lines).strip()}")
