"""Policy bundles: ``policy.onnx`` + ``manifest.yaml`` + ``SHA256SUMS`` from a training checkpoint.

The ONNX graph is the actor with its observation normaliser baked in: raw observation
``obs (batch, obs_dim)`` in, ``action_mean`` and ``action_log_std`` (batch, 12) out. The manifest
carries everything a runtime needs to use it without guessing (observation and action spec, SDK
joint order, default pose, action scales, PD gains, rates, limits) plus lineage; ``SHA256SUMS``
covers every file, the manifest included. ``deploy.bundle`` checks all of it before a robot moves.

A bundle also carries ``checkpoint.pt``: the weights-only checkpoint it was exported from (actor and
critic with their observation normalisers, network and task config; no optimiser state), so that
``--init BUNDLE`` can start fine-tuning or a session from it. The robot's runtime ignores it (it
never imports torch); ``SHA256SUMS`` and the manifest's ``files`` list it like the other files.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from unio4.configs.command_line import one_line
from unio4.configs.loader import apply_overrides, from_dict, to_dict
from unio4.deploy.bundle import MANIFEST_FILE, SUPPORTED_FORMAT, sha256_file, verify_sums, write_sums
from unio4.learning.checkpoint import checkpoint_network, load_checkpoint, save_checkpoint
from unio4.learning.policy import GaussianActor
from unio4.robots.description import load_robot
from unio4.sim.config import TaskConfig
from unio4.sim.rewards import validate_weights

POLICY_FILE = "policy.onnx"
CHECKPOINT_FILE = "checkpoint.pt"  # the bundle's weights-only checkpoint (--init BUNDLE)
# What a bundle's checkpoint keeps of a training checkpoint: weights, dimensions, the configs that
# --init and export read, and lineage. Optimiser and RNG state, ensembles, dynamics models and
# curricula stay in the training checkpoint (a bundle's checkpoint.pt starts a run, never resumes one).
BUNDLE_CHECKPOINT_KEYS = (
    "kind",
    "actor",
    "critic",
    "session_critic",
    "member",
    "obs_dim",
    "critic_obs_dim",
    "act_dim",
    "action_bound",
    "task_config",
    "config",
    "bc",
    "offline",
    "iteration",
    "global_step",
    "init",
    "dataset",
    "env",
    "backend",
)


def actor_from_checkpoint(state: dict[str, Any], where: str) -> GaussianActor:
    """The checkpoint's actor, rebuilt with the checkpoint's own network config."""
    net = checkpoint_network(state, where)
    if net is None or "obs_dim" not in state:
        raise ValueError(f"{where}: checkpoint has no network config / dimensions; was it written by unio4?")
    actor = GaussianActor(state["obs_dim"], state["act_dim"], state["action_bound"], net)
    try:
        actor.load_state_dict(state["actor"])
    except RuntimeError as exc:  # weights that do not fit the network, a malformed command remap: the file, not a bug
        raise ValueError(f"{where}: the actor does not load: {one_line(exc)}") from None
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
            "terms": list(obs.terms()),
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


def bundle_checkpoint(state: dict[str, Any], where: str) -> dict[str, Any]:
    """The weights-only checkpoint a bundle carries: :data:`BUNDLE_CHECKPOINT_KEYS` of ``state``, network config explicit."""
    slim = {key: state[key] for key in BUNDLE_CHECKPOINT_KEYS if key in state}
    network = checkpoint_network(state, where)
    if network is not None:
        slim["network"] = to_dict(network)
    return slim


def is_bundle(path: Path) -> bool:
    """Whether ``path`` is a policy bundle directory (it holds a manifest)."""
    return path.is_dir() and (path / MANIFEST_FILE).is_file()


def init_checkpoint(path: str | Path) -> Path:
    """The checkpoint ``path`` names: itself, or the ``checkpoint.pt`` of a policy bundle directory.

    A bundle's files are checked against its ``SHA256SUMS`` first; a bundle without a checkpoint
    (exported before bundles carried one), or a directory that is not a bundle, is a one-line error.
    """
    path = Path(path)
    if not path.is_dir():
        return path
    if not is_bundle(path):
        run = path / "checkpoints" / "final.pt"
        hint = f" (a training run: pass {run})" if run.is_file() else ""
        raise ValueError(f"{path}: a directory that is neither a checkpoint nor a policy bundle (no {MANIFEST_FILE}){hint}")
    if not (path / CHECKPOINT_FILE).is_file():
        try:
            source = (yaml.safe_load((path / MANIFEST_FILE).read_text()) or {}).get("lineage", {}).get("checkpoint")
        except (yaml.YAMLError, AttributeError):
            source = None
        names = f" (its manifest's lineage names {source})" if source else ""
        raise ValueError(
            f"{path} is a policy bundle without a checkpoint (exported before bundles carried one); "
            f"pass the checkpoint it was exported from, or re-export it{names}"
        )
    verify_sums(path)  # a bundle's checkpoint is read only when its sha256 is the one the bundle lists
    return path / CHECKPOINT_FILE


def check_out(out: Path, checkpoint: Path, force: bool) -> None:
    """Refuse to write a bundle over ``out`` unless it is new, empty, or ``force`` says replace it.

    Even with ``force``, a bundle never replaces a file, nor a directory that holds ``checkpoint``
    (except a bundle re-exported in place from its own ``checkpoint.pt``: that is read first).
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a directory; pass a new directory to -o")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise ValueError(f"{out} exists; pass --force to replace it")
    source = checkpoint.resolve()
    in_place = is_bundle(out) and source == (out / CHECKPOINT_FILE).resolve()
    if out.resolve() in source.parents and not in_place:
        raise ValueError(f"{checkpoint} lies inside {out}: replacing {out} would delete it; write the bundle to another directory")


def _replace_dir(new: Path, out: Path) -> None:
    """Put directory ``new`` at ``out``: two renames in the same directory, the old ``out`` deleted after."""
    if not out.exists():
        new.rename(out)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    out.rename(old)
    try:
        new.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def export_bundle(checkpoint: str | Path, out: str | Path, force: bool = True) -> Path:
    """Write the bundle ``out`` (policy.onnx, checkpoint.pt, manifest.yaml, SHA256SUMS) from a unio4 checkpoint.

    ``checkpoint`` may be a bundle directory: it is re-exported from its ``checkpoint.pt``. The bundle is
    written beside ``out`` and then swapped in, so ``out`` is never half-written. An ``out`` that exists
    and is not empty is replaced only with ``force`` (``unio4 export --force``; see :func:`check_out`).
    Returns ``out``.
    """
    checkpoint, out = init_checkpoint(checkpoint), Path(out)
    check_out(out, checkpoint, force)
    state = load_checkpoint(checkpoint)
    if state.get("task_config") is None:
        raise ValueError(f"{checkpoint}: checkpoint has no task_config; export needs the observation/action spec")
    task = from_dict(TaskConfig, state["task_config"], where=f"{checkpoint}: task_config")
    actor = actor_from_checkpoint(state, str(checkpoint))
    manifest = build_manifest(state, task, checkpoint)  # before a re-export in place replaces its checkpoint
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        export_onnx(actor, tmp / POLICY_FILE)
        save_checkpoint(tmp / CHECKPOINT_FILE, bundle_checkpoint(state, str(checkpoint)))
        manifest["files"] = {name: sha256_file(tmp / name) for name in (POLICY_FILE, CHECKPOINT_FILE)}
        (tmp / MANIFEST_FILE).write_text(yaml.safe_dump(manifest, sort_keys=False))
        write_sums(tmp)
        _replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def checkpoint_policy(path: str | Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], TaskConfig]:
    """A training checkpoint's actor (its mean) and the task it was trained on."""
    state = load_checkpoint(path)
    task = checkpoint_task(state, path)
    if task is None:
        raise ValueError(f"{path}: the checkpoint has no task_config; play a bundle, or a checkpoint trained on the Go1 task")
    actor = actor_from_checkpoint(state, str(path))
    return (lambda obs: actor(obs)[0].detach()), task


def checkpoint_task(state: dict[str, Any], path: str | Path, overrides: Sequence[str] = ()) -> TaskConfig | None:
    """The Go1 task a checkpoint's ``state`` was trained on, with ``overrides`` applied and validated (None: it has none).

    ``path`` names the checkpoint in a bad field's one-line error.
    """
    if state.get("task_config") is None:
        return None
    task = from_dict(TaskConfig, apply_overrides(copy.deepcopy(state["task_config"]), overrides), where=f"{path}: task_config")
    validate_weights(task.rewards.weights, where=f"{path}: task_config.rewards.weights")
    return task
