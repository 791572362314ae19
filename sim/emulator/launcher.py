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
    proc = subprocess.Popen(
        [sys.executable, "-m", MODULE, "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    lines: list[str] = []
    while len(lines) < 10 and (line := proc.stdout.readline()):  # physics engines may print a banner first
        lines.append(line)
        if match := re.search(r"udp://[\d.]+:(\d+)", line):
            return proc, int(match.group(1))
    proc.kill()
    raise RuntimeError(f"the emulator did not start: {''.join(lines).strip()}")
