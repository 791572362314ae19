"""``unio4 replay RUN --mode robot``: a logged run's joint targets, sent again to a robot.

The targets go through the deploy runtime unchanged in every other respect: connect, stand-up,
rate and position limits, the safety monitor, the serial e-stop and damping at the end, but with
Kp and Kd scaled down (``gain_scale``), so a replay is softer than the run it reproduces. The
replay writes its own rollout log; comparing its joint angles with the original's tells how
repeatable the robot (or the emulator) is under the same commands. numpy + the SDK only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unio4.configs.loader import read_yaml, to_dict
from unio4.deploy.manifest import check_against_robot, parse_manifest
from unio4.deploy.robot_io import SdkLink
from unio4.deploy.rollout_log import RolloutLog, read_log
from unio4.deploy.runtime import ReplaySource, RunResult, Runtime, RuntimeConfig
from unio4.deploy.safety import RobotLimits
from unio4.robots.description import load_robot


@dataclass
class RobotReplay:
    """How a replay on the robot went: the run's result, its log and the joint tracking error against the logged run."""

    result: RunResult
    steps: int  # targets replayed
    log_dir: Path
    rms_joint_error: float  # rad, replayed vs logged joint angles over the replayed steps
    rms_first_second: float


def load_replay_source(run_dir: str | Path, gain_scale: float) -> tuple[ReplaySource, dict[str, np.ndarray]]:
    """The joint targets and manifest of rollout log ``run_dir``, and the log itself."""
    run_dir = Path(run_dir)
    meta_path = run_dir / "meta.yaml"
    if not meta_path.is_file():
        raise ValueError(f"{meta_path}: missing; is {run_dir} a rollout log (unio4 deploy --out)?")
    meta = read_yaml(meta_path)
    if "manifest" not in meta:
        raise ValueError(f"{meta_path}: no 'manifest' (the deployed bundle's), needed for the gains and joint limits")
    manifest = parse_manifest(meta["manifest"], f"{meta_path}: manifest")
    check_against_robot(manifest, load_robot(manifest.robot), f"{meta_path}: manifest")
    arrays = read_log(run_dir).first_stretch(run_dir)  # never splice targets across a lost chunk
    return ReplaySource(np.asarray(arrays["joint_target"], dtype=np.float64), manifest, gain_scale), arrays


def replay_on_robot(
    run_dir: str | Path, host: str, port: int, cfg: RuntimeConfig, gain_scale: float, log_dir: str | Path, local_port: int = 0
) -> RobotReplay:
    """Send a logged run's joint targets to a robot at ``gain_scale`` times its gains, through the stand-up, safety layer and damping."""
    source, original = load_replay_source(run_dir, gain_scale)
    meta = {"source": "robot", "mode": "replay", "replay_of": str(Path(run_dir).resolve()), "gain_scale": gain_scale}
    log = RolloutLog(log_dir, {**meta, "robot_address": f"{host}:{port}", "manifest": to_dict(source.manifest)}, cfg.chunk_steps)
    policy_dt = source.manifest.control.policy_dt
    duration = (len(source.targets) + 1) * policy_dt  # one policy tick past the last target: "replay finished"
    link = SdkLink(host, port, RobotLimits.of(load_robot(source.manifest.robot)), local_port)
    try:
        result = Runtime(None, link, cfg, log=log, replay=source).run(duration)
    finally:
        link.close()
    log.close({"reason": result.reason, "safety_stop": result.safety_stop, "policy_steps": result.policy_steps, "timing": result.timing})
    steps = result.policy_steps
    if steps == 0:
        return RobotReplay(result, 0, Path(log_dir), float("nan"), float("nan"))
    replayed = read_log(log_dir).arrays
    err = replayed["joint_pos"][:steps] - original["joint_pos"][:steps]
    per_second = round(1.0 / policy_dt)
    return RobotReplay(result, steps, Path(log_dir), float(np.sqrt(np.mean(err**2))), float(np.sqrt(np.mean(err[:per_second] ** 2))))
