"""Policies that act in the Go1 task without a learner: the built-in trot and exported bundles.

A policy is any callable from the task's observations (N, obs) to actions (N, 12). The trot reads
the task state itself (it is a model-based controller, not a network); a bundle runs its ONNX
graph through onnxruntime exactly as the robot does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from unio4.sim.gait import TrotController
from unio4.sim.task import Go1VelocityTask

Policy = Callable[[torch.Tensor], torch.Tensor]


def gait_policy(task: Go1VelocityTask, controller: TrotController | None = None) -> Policy:
    """The built-in trot as a policy of ``task`` (it reads the task's state, not the observation)."""
    trot = controller or TrotController.for_task(task)
    return lambda _obs: trot.act_task(task)


def check_action_noise(std: float) -> None:
    """A one-line error naming the option unless ``std`` is a usable noise scale (finite, >= 0)."""
    if not (std >= 0.0 and np.isfinite(std)):
        raise ValueError(f"--action-noise: expected a finite value >= 0, got {std}")


def with_action_noise(policy: Policy, std: float, seed: int = 0) -> Policy:
    """``policy`` plus independent Gaussian noise of ``std`` (action units) on every action, seeded.

    Exploration for logged data: a deterministic controller such as the trot gives one action per
    state, so an offline critic sees no alternatives to learn action effects from; noise on the
    executed action shows it some (the noisy action is what is logged and what the robot gets).
    """
    check_action_noise(std)
    gen = torch.Generator().manual_seed(seed)

    def act(obs: torch.Tensor) -> torch.Tensor:
        actions = policy(obs)
        return actions + std * torch.randn(actions.shape, generator=gen).to(actions.device)

    return act


def bundle_policy(path: str | Path, task: Go1VelocityTask, explore: bool = False, seed: int = 0) -> Policy:
    """An exported policy bundle (ONNX, onnxruntime) acting in ``task``: the mean action, or sampled with ``explore``.

    The bundle must describe this task's observation and action: a mismatch is a one-line error
    naming the bundle and the field, since it would silently give a different policy.
    """
    from unio4.deploy.bundle import load_bundle

    bundle = load_bundle(path, robot=task.robot.name)
    where = f"{path}/manifest.yaml"
    if bundle.obs_size != task.num_obs:
        raise ValueError(f"{where}: observation.size is {bundle.obs_size}, the task's observation has {task.num_obs} values")
    action = bundle.manifest["action"]
    if float(action["clip"]) != task.cfg.action_clip:
        raise ValueError(f"{where}: action.clip is {action['clip']}, the task clips actions at {task.cfg.action_clip}")
    if not np.allclose(action["scales"], task.robot.action_scales):
        raise ValueError(f"{where}: action.scales {action['scales']} differ from the robot description's")
    rng = np.random.default_rng(seed)

    def act(obs: torch.Tensor) -> torch.Tensor:
        mean, log_std = bundle.infer_batch(obs.cpu().numpy())
        if explore:
            mean = mean + np.exp(log_std) * rng.standard_normal(mean.shape).astype(np.float32)
        return torch.from_numpy(mean)

    return act
