"""Policy bundles: ``policy.onnx`` + ``manifest.yaml`` + ``SHA256SUMS`` from a training checkpoint.

The ONNX graph is the actor with its observation normaliser baked in: raw observation
``obs (batch, obs_dim)`` in, ``action_mean`` and ``action_log_std`` (batch, 12) out. The manifest
carries everything a runtime needs to use it without guessing (observation and action spec, SDK
joint order, default pose, action scales, PD gains, rates, limits) plus lineage; ``SHA256SUMS``
covers every file, the manifest included. ``deploy.bundle`` checks all of it before a robot moves.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from unio4.configs.loader import from_dict, to_dict
from unio4.deploy.bundle import MANIFEST_FILE, SUPPORTED_FORMAT, sha256_file, write_sums
from unio4.deploy.observations import FRAME_TERMS
from unio4.learning.checkpoint import checkpoint_network, load_checkpoint
from unio4.learning.policy import GaussianActor
from unio4.robots.description import load_robot
from unio4.sim.config import TaskConfig

POLICY_FILE = "policy.onnx"


def actor_from_checkpoint(state: dict[str, Any], where: str) -> GaussianActor:
    """The checkpoint's actor, rebuilt with the checkpoint's own network config."""
    net = checkpoint_network(state, where)
    if net is None or "obs_dim" not in state:
        raise ValueError(f"{where}: checkpoint has no network config / dimensions; was it written by unio4?")
    actor = GaussianActor(state["obs_dim"], state["act_dim"], state["action_bound"], net)
    actor.load_state_dict(state["actor"])
    return actor.eval()


def export_onnx(actor: GaussianActor, path: Path) -> None:
    """Write ``actor`` (normaliser included) as ONNX with a dynamic batch axis."""
    path.parent.mkdir(parents=True, exist_ok=True)
    example = (torch.zeros(1, actor.obs_dim),)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            actor,
            example,
            str(path),
            input_names=["obs"],
            output_names=["action_mean", "action_log_std"],
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            external_data=False,
            verbose=False,
        )


def build_manifest(state: dict[str, Any], task: TaskConfig, checkpoint: Path) -> dict[str, Any]:
    """The bundle's contract with the runtime (see the module docstring)."""
    robot = load_robot(task.robot)
    obs = task.observations
    nj = len(robot.joint_names)
    return {
        "format": SUPPORTED_FORMAT,
        "robot": robot.name,
        "policy": {
            "file": POLICY_FILE,
            "input": {"name": "obs", "shape": ["batch", obs.size(nj)]},
            "outputs": {"action_mean": ["batch", nj], "action_log_std": ["batch", nj]},
        },
        "observation": {
            "size": obs.size(nj),
            "frame_size": obs.frame_size(nj),
            "terms": [*FRAME_TERMS, *(["clock"] if obs.clock_frequency > 0 else [])],
            "config": to_dict(obs),
        },
        "action": {
            "size": nj,
            "clip": task.action_clip,
            "scales": [float(x) for x in robot.action_scales],
            "target": "q_default + scale * clip(action)",
        },
        "joints": {
            "order": list(robot.joint_names),
            "default_pos": [float(x) for x in robot.default_joint_pos],
            "lower": [float(x) for x in robot.joint_lower],
            "upper": [float(x) for x in robot.joint_upper],
            "torque_limit": [float(x) for x in robot.torque_limits],
        },
        "control": {
            "kp": robot.control.kp,
            "kd": robot.control.kd,
            "policy_dt": robot.control.sim_dt * robot.control.decimation,
            "sdk_dt": robot.control.sdk_dt,
            "damping_kd": robot.control.damping_kd,
        },
        "commands": {
            k: to_dict(getattr(task.commands, k)) for k in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw", "resample_time_s", "zero_below")
        },
        "lineage": {
            "checkpoint": str(checkpoint),
            "checkpoint_sha256": sha256_file(checkpoint),
            "kind": state.get("kind", "online"),
            "iteration": state.get("iteration"),
            "global_step": state.get("global_step"),
            "init": state.get("init"),
            "dataset": state.get("dataset"),
        },
    }


def export_bundle(checkpoint: str | Path, out: str | Path) -> Path:
    """Write ``out/policy.onnx`` and ``out/manifest.yaml`` from a unio4 checkpoint; returns ``out``."""
    checkpoint, out = Path(checkpoint), Path(out)
    state = load_checkpoint(checkpoint)
    if state.get("task_config") is None:
        raise ValueError(f"{checkpoint}: checkpoint has no task_config; export needs the observation/action spec")
    task = from_dict(TaskConfig, state["task_config"], where=f"{checkpoint}: task_config")
    actor = actor_from_checkpoint(state, str(checkpoint))
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    export_onnx(actor, tmp / POLICY_FILE)
    manifest = build_manifest(state, task, checkpoint)
    manifest["files"] = {POLICY_FILE: sha256_file(tmp / POLICY_FILE)}
    (tmp / MANIFEST_FILE).write_text(yaml.safe_dump(manifest, sort_keys=False))
    write_sums(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def checkpoint_policy(path: str | Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], TaskConfig]:
    """A training checkpoint's actor (its mean) and the task it was trained on."""
    state = load_checkpoint(path)
    if state.get("task_config") is None:
        raise ValueError(f"{path}: the checkpoint has no task_config; play a bundle, or a checkpoint trained on the Go1 task")
    actor = actor_from_checkpoint(state, str(path))
    return (lambda obs: actor(obs)[0].detach()), from_dict(TaskConfig, state["task_config"], where=f"{path}: task_config")
