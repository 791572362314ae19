"""``unio4 bench deploy``: the runtime's timing against the real-time emulator over the SDK.

Runs the emulator (real time, 500 Hz, its own process) and the deploy runtime (this process, with
rollout logging on, as on the robot) for ``duration`` seconds of policy control, and reports the
500 Hz I/O loop's wake-up error and late/missed ticks, the 50 Hz policy loop's period error and
missed deadlines, and onnxruntime's inference time.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from deploy.bundle import load_bundle
from deploy.robot_io import SdkLink
from deploy.rollout_log import RolloutLog
from deploy.runtime import Runtime, RuntimeConfig, run_meta


def bench_deploy(
    bundle_path: Path, duration_s: float, command: tuple[float, float, float], realtime_priority: int = 0
) -> tuple[dict[str, Any], str]:
    """Timing statistics of one run and the emulator's closing line."""
    bundle = load_bundle(bundle_path)
    cfg = RuntimeConfig(command=command, realtime_priority=realtime_priority)
    emulator = subprocess.Popen(
        [sys.executable, "-m", "unio4.cli", "emulate", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert emulator.stdout is not None
        match = re.search(r"udp://([\d.]+):(\d+)", emulator.stdout.readline())
        if match is None:
            raise RuntimeError("the emulator did not start")
        host, port = match.group(1), int(match.group(2))
        with tempfile.TemporaryDirectory() as tmp:
            log = RolloutLog(Path(tmp) / "log", run_meta(bundle, cfg, f"{host}:{port}", False, 0), cfg.chunk_steps)
            runtime = Runtime(bundle, SdkLink(host, port), cfg, log=log)
            result = runtime.run(duration_s)
            log.close({"reason": result.reason})
    finally:
        emulator.send_signal(signal.SIGINT)
        out, _ = emulator.communicate(timeout=30)
    timing = {**result.timing, "reason": result.reason, "policy_steps": result.policy_steps}
    return timing, out.strip().splitlines()[-1] if out.strip() else ""
