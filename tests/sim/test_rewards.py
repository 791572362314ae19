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
        link_force=torch.zeros(n, 8),
        terminated=torch.zeros(n, dtype=torch.bool), soft_lower=zeros[0], soft_upper=zeros[0], default_joint_pos=zeros[0],
        torque_limit=torch.full((12,), 20.0), clock_cycles=torch.tensor([0.25, 0.25]), dt=0.02,
    )  # fmt: skip
    stance = gait_stance(x, cfg)  # a quarter cycle in: FR and RL stand, FL and RR swing
    assert torch.allclose(stance, torch.tensor([[1.0, 0.0, 0.0, 1.0]] * 2), atol=1e-4)
    score = gait_contact(x, cfg)
    assert score[0] > 0.99 and abs(float(score[1]) - 0.5) < 1e-3  # a trot in step: 1; standing on four feet: 1/2
    lifted = gait_clearance(x, cfg)  # swing feet at 0 lift at mid-swing should be at the clearance height
    assert lifted[0] > 0 and float(lifted[0]) == pytest.approx(2 * (cfg.gait_clearance * math.sin(math.pi * 0.5)) ** 2, rel=1e-3)


def test_torque_limits_prices_only_the_newton_metres_above_the_soft_limit() -> None:
    """A known torque profile on the Go1 (hip/thigh limit 23.7 Nm, calf 35.55): only the part of |tau| above 90 %
    of each joint's own limit counts, whatever its sign; a robot inside its limits pays nothing."""
    from unio4.robots.description import load_robot
    from unio4.sim.rewards import RewardConfig, RewardConstants, reward_inputs, torque_limits

    go1, cfg = load_robot("go1"), RewardConfig()
    constants = RewardConstants.for_robot(go1, cfg, clock_frequency=3.0, dt=0.02)
    limit = torch.tensor(go1.torque_limits, dtype=torch.float32)
    tau = torch.stack([0.5 * limit, 0.5 * limit])
    tau[1, 1], tau[1, 2], tau[1, 5] = -limit[1], 0.95 * limit[2], 0.89 * limit[5]  # a thigh at its limit (negative), a calf at 95 %
    zeros, n = torch.zeros(2, 12), 2
    x = reward_inputs(
        constants, commands=torch.zeros(n, 3), base_lin_vel=torch.zeros(n, 3), base_ang_vel=torch.zeros(n, 3),
        projected_gravity=torch.zeros(n, 3), base_height=torch.zeros(n), joint_pos=zeros, joint_vel=zeros, joint_torque=tau,
        foot_force=torch.zeros(n, 4), foot_lift=torch.zeros(n, 4), actions=zeros, last_actions=zeros, last_joint_vel=zeros,
        first_contact=torch.zeros(n, 4, dtype=torch.bool), air_time=torch.zeros(n, 4), body_contact=None,
        terminated=torch.zeros(n, dtype=torch.bool), time=torch.zeros(n),
    )  # fmt: skip
    expected = 0.1 * float(limit[1]) + 0.05 * float(limit[2])
    assert float(limit[1]) == pytest.approx(23.7) and float(limit[2]) == pytest.approx(35.55)
    assert torque_limits(x, cfg).tolist() == pytest.approx([0.0, expected], rel=1e-5)


def test_link_collision_prices_the_calves_the_collision_term_cannot_see() -> None:
    """go1_flat_well's link_collision: a robot kneeling on its calves in MuJoCo pays it on every step its calves
    touch (the trunk-and-thigh ``collision`` term reads nothing); a standing robot pays nothing; go1_flat,
    which does not weigh the term, builds its engine without the extra sensors."""
    from unio4.sim.config import load_task_config
    from unio4.sim.task import Go1VelocityTask

    torch.set_num_threads(1)
    free = ["randomization.enabled=false", "termination.trunk_contact=false", "termination.min_base_height=0.0", "termination.max_tilt=3.0"]
    task = Go1VelocityTask(load_task_config("go1_flat_well", free), 2, seed=0, num_threads=1)
    kneel = torch.zeros(2, 12)
    kneel[1, 1::3], kneel[1, 2::3] = -3.0, -6.0  # thighs back, calves folded under: the robot sits on its calves
    calf_steps = torch.zeros(2)
    for _ in range(100):
        task.step(kneel)
        calf_steps += (task.step_state.link_contact[:, 4:] > 1.0).float().sum(1)  # columns: 4 hips, then 4 calves
    sums = task.episode_sums
    assert calf_steps[0] == 0 and calf_steps[1] > 200
    assert float(sums["link_collision"][0]) == 0.0 and float(sums["collision"][1]) == 0.0
    weight = task.cfg.rewards.weights["link_collision"] * task.dt  # scale_by_dt
    assert float(sums["link_collision"][1]) == pytest.approx(weight * float(calf_steps[1]), rel=1e-4)
    plain = Go1VelocityTask(load_task_config("go1_flat", []), 1, seed=0, num_threads=1)
    assert plain.state.link_contact.shape == (1, 0) and "link_collision" not in plain.episode_sums
