"""``unio4 bench deploy``: the runtime's timing against a robot or the real-time emulator over the SDK.

Runs the deploy runtime (this process, with rollout logging on, as on the robot) against the robot
at ``host:port`` (``unio4 bench deploy`` starts the real-time emulator, 500 Hz, in its own process)
for ``duration`` seconds of policy control, and reports the
500 Hz I/O loop's wake-up error and late/missed ticks, the 50 Hz policy loop's period error and
missed deadlines, and onnxruntime's inference time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from unio4.deploy.bundle import load_bundle
from unio4.deploy.runtime import RuntimeConfig, run_bundle
from unio4.robots.description import load_robot


def bench_deploy(
    bundle_path: Path,
    host: str,
    port: int,
    duration_s: float,
    command: tuple[float, float, float],
    realtime_priority: int = 0,
    rerun_addr: str | None = None,
    rerun_save: Path | None = None,
) -> dict[str, Any]:
    """Timing statistics of one run, how it ended and its policy steps (and, streaming to Rerun, the frames sent and dropped)."""
    bundle = load_bundle(bundle_path)
    cfg = RuntimeConfig(command=command, realtime_priority=realtime_priority)
    stream = None
    if rerun_addr is not None or rerun_save is not None:
        from unio4.deploy.rerun_stream import open_stream

        stream = open_stream(load_robot(bundle.spec.robot), rerun_addr, rerun_save)
    with tempfile.TemporaryDirectory() as tmp:
        result = run_bundle(bundle, host, port, cfg, duration_s, log_dir=Path(tmp) / "log", stream=stream)
    out = {**result.timing, "reason": result.reason, "policy_steps": result.policy_steps}
    if stream is not None:
        out["rerun"] = dict(stream.stats.__dict__)
    return out
