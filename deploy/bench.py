"""``unio4 bench deploy``: the runtime's timing against the real-time emulator over the SDK.

Runs the emulator (real time, 500 Hz, its own process) and the deploy runtime (this process, with
rollout logging on, as on the robot) for ``duration`` seconds of policy control, and reports the
500 Hz I/O loop's wake-up error and late/missed ticks, the 50 Hz policy loop's period error and
missed deadlines, and onnxruntime's inference time.
"""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path
from typing import Any

from deploy.bundle import load_bundle
from deploy.runtime import RuntimeConfig, run_bundle


def bench_deploy(
    bundle_path: Path, duration_s: float, command: tuple[float, float, float], realtime_priority: int = 0
) -> tuple[dict[str, Any], str]:
    """Timing statistics of one run and the emulator's closing line."""
    bundle = load_bundle(bundle_path)
    cfg = RuntimeConfig(command=command, realtime_priority=realtime_priority)
    from sim import emulator

    proc, port = emulator.spawn()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = run_bundle(bundle, "127.0.0.1", port, cfg, duration_s, log_dir=Path(tmp) / "log")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    timing = {**result.timing, "reason": result.reason, "policy_steps": result.policy_steps}
    return timing, out.strip().splitlines()[-1] if out.strip() else ""
