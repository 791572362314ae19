"""Settings shared by the on-robot session tests."""

from __future__ import annotations

from typing import Any

from tests.conftest import STALL_SLACK
from unio4.configs.loader import from_dict
from unio4.learning.robot.session import SessionConfig


def small_config(port: int, iterations: int, **settings: Any) -> SessionConfig:
    """A PPO-mode session of one 3 s rollout per iteration against the emulator at ``port``; ``settings`` replace keys."""
    return from_dict(
        SessionConfig,
        {
            "iterations": iterations,
            "rollouts": 1,
            "steps": 150,
            "robot": f"127.0.0.1:{port}",
            "local_port": 0,
            "prompt": False,
            "runtime_overrides": [STALL_SLACK],
            "critic_warmup_epochs": 20,
            "ppo": {"num_steps": 150, "epochs": 4, "num_minibatches": 2, "clip": 0.05, "actor_lr": 2e-5, "lr_schedule": "fixed"},
            # the floor is for real robots (test_session.py, the gate tests); the walking_bundle fixture's BC trot tracks at ~0.5 m/s error
            "gate": {"num_envs": 2, "seconds": 2.0, "max_lin_vel_error": 1.0},
            # the on-robot check walks cost robot time every iteration: off here, on in test_robot_check.py
            "check": {"enabled": False},
        }
        | settings,
    )
