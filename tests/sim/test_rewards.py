"""Reward terms (sim/rewards.py) on known inputs."""

from __future__ import annotations

import math

import pytest
import torch


def test_gait_terms_follow_the_clock() -> None:
    """gait_contact scores loaded stance feet and unloaded swing feet; gait_clearance prices a swing foot left on the ground."""
    from unio4.sim.rewards import RewardConfig, RewardInputs, gait_clearance, gait_contact, gait_stance

    cfg = RewardConfig(gait_smoothing=0.01)
    n = 2
    zeros = torch.zeros(n, 12)
    x = RewardInputs(
        commands=torch.zeros(n, 3), base_lin_vel=torch.zeros(n, 3), base_ang_vel=torch.zeros(n, 3), projected_gravity=torch.zeros(n, 3),
        base_height=torch.zeros(n), joint_pos=zeros, joint_vel=zeros, last_joint_vel=zeros, joint_torque=zeros, actions=zeros,
        last_actions=zeros, foot_force=torch.tensor([[60.0, 0.0, 0.0, 60.0], [60.0, 60.0, 60.0, 60.0]]), foot_lift=torch.zeros(n, 4),
        first_contact=torch.zeros(n, 4, dtype=torch.bool), air_time=torch.zeros(n, 4), collision_force=torch.zeros(n, 5),
        terminated=torch.zeros(n, dtype=torch.bool), soft_lower=zeros[0], soft_upper=zeros[0], default_joint_pos=zeros[0],
        clock_cycles=torch.tensor([0.25, 0.25]), dt=0.02,
    )  # fmt: skip
    stance = gait_stance(x, cfg)  # a quarter cycle in: FR and RL stand, FL and RR swing
    assert torch.allclose(stance, torch.tensor([[1.0, 0.0, 0.0, 1.0]] * 2), atol=1e-4)
    score = gait_contact(x, cfg)
    assert score[0] > 0.99 and abs(float(score[1]) - 0.5) < 1e-3  # a trot in step: 1; standing on four feet: 1/2
    lifted = gait_clearance(x, cfg)  # swing feet at 0 lift at mid-swing should be at the clearance height
    assert lifted[0] > 0 and float(lifted[0]) == pytest.approx(2 * (cfg.gait_clearance * math.sin(math.pi * 0.5)) ** 2, rel=1e-3)
