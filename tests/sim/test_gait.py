"""Gait quality metrics (sim/gait_metrics.py, sim/gait_recording.py): each metric pinned on a hand-made
trajectory, the feet's kinematics checked against MuJoCo, a robot log's subset, and one short evaluation."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pytest
import torch

from unio4.configs.loader import ConfigError
from unio4.deploy.rollout_log import RolloutLog
from unio4.robots.description import load_robot
from unio4.sim.backends.interface import RobotState
from unio4.sim.backends.mujoco_model import ModelIndex, compile_model
from unio4.sim.gait_metrics import (
    GaitMetricsConfig,
    GaitTrajectory,
    action_rate,
    base_height_stats,
    contacts_per_minute,
    cost_of_transport,
    duty_factor,
    foot_slip,
    format_gait_table,
    gait_metrics,
    joint_deviation,
    log_gait_metrics,
    positive_power,
    step_frequency,
    swing_apex,
    torque_saturation,
)
from unio4.sim.gait_recording import contact_point_velocity, foot_kinematics

DT = 0.02  # s, the policy step
GO1 = load_robot("go1")
PRETRAINED = Path(__file__).resolve().parents[2] / "pretrained" / "go1_flat"


def no_ends(t: int, n: int = 1) -> np.ndarray:
    return np.zeros((t, n), dtype=bool)


def trajectory(t: int, n: int = 1, **fields: Any) -> GaitTrajectory:
    """A robot standing still at the default pose for ``t`` steps, with ``fields`` replaced."""
    base: dict[str, Any] = {
        "dt": DT,
        "joint_pos": np.tile(GO1.default_joint_pos, (t, n, 1)),
        "joint_vel": np.zeros((t, n, 12)),
        "joint_torque": np.zeros((t, n, 12)),
        "actions": np.zeros((t, n, 12)),
        "foot_contact": np.ones((t, n, 4), dtype=bool),
        "episode_end": no_ends(t, n),
        "default_joint_pos": GO1.default_joint_pos,
        "torque_limit": GO1.torque_limits,
    }
    return GaitTrajectory(**{**base, **fields})


def gait_pattern(air: int, stance: int, cycles: int, lead_air: int | None = None) -> np.ndarray:
    """One foot's contact flags: ``cycles`` of (air, stance), the air split as ``lead_air`` before, the rest after."""
    lead = air if lead_air is None else lead_air
    cycle = [False] * lead + [True] * stance + [False] * (air - lead)
    return np.array(cycle * cycles)


def test_base_height_is_the_mean_and_spread_of_trunk_height() -> None:
    mean, std = base_height_stats(np.array([[0.25], [0.29]] * 10))
    assert mean == pytest.approx(0.27) and std == pytest.approx(0.02)


def test_a_foot_sliding_at_a_known_speed_in_stance() -> None:
    """0.3 m/s forward and 0.4 sideways in stance is 0.5 m/s of slip; swing speeds and the lift-off sample do not count."""
    t = 30
    contact = np.zeros((t, 1, 4), dtype=bool)
    contact[5:20] = True  # one stance of 15 samples; the others are swing
    velocity = np.zeros((t, 1, 4, 3))
    velocity[..., 0] = 3.0  # swing: fast
    velocity[5:19, ..., :] = [0.3, 0.4, -0.2]  # stance: sliding (a vertical component is no slip)
    velocity[19] = 2.0  # the stance's last sample: the foot lifted off during that step
    assert foot_slip(velocity, contact, no_ends(t)) == pytest.approx(0.5)
    assert math.isnan(foot_slip(velocity, np.zeros_like(contact), no_ends(t)))


def test_a_calf_touching_the_ground_twice() -> None:
    """Two touches of 0.1 s and 0.3 s in 3 s: two onsets, 40 per robot-minute, however long each lasts."""
    t, calf = 150, 9  # 3 s; link 9 of 13 (trunk, hips, thighs, calves: a calf)
    body = np.zeros((t, 1, 13), dtype=bool)
    body[20:25, 0, calf] = True
    body[100:115, 0, calf] = True
    assert contacts_per_minute(body, no_ends(t), DT) == pytest.approx(40.0)
    ends = no_ends(t)
    ends[99] = True  # a reset just before the second touch: no onset can be seen across it
    assert contacts_per_minute(body, ends, DT) == pytest.approx(20.0)


def test_a_known_torque_profile_near_the_limit() -> None:
    """The calf at 95 % of its limit on 25 of 100 steps; exactly 90 % and the hips at 80 % do not count."""
    t = 100
    tau = np.zeros((t, 1, 12))
    tau[:, 0, 0] = 0.8 * GO1.torque_limits[0]
    tau[:25, 0, 2] = -0.95 * GO1.torque_limits[2]
    tau[25:50, 0, 5] = 0.9 * GO1.torque_limits[5]
    assert torque_saturation(tau, GO1.torque_limits, 0.9) == pytest.approx(0.25)


def test_power_counts_positive_work_and_gives_a_known_cost_of_transport() -> None:
    """Two joints doing 6 W each, one braking at -2 W: 12 W; 12 kg at 0.5 m/s: CoT = 12 / (12 * 9.81 * 0.5)."""
    t = 10
    tau, dq = np.zeros((t, 1, 12)), np.zeros((t, 1, 12))
    tau[..., :3], dq[..., :3] = [2.0, 2.0, 2.0], [3.0, 3.0, -1.0]
    power = positive_power(tau, dq)
    assert power == pytest.approx(np.full((t, 1), 12.0))
    mass, speed = np.full((t, 1), 12.0), np.full((t, 1), 0.5)
    assert cost_of_transport(power, mass, speed, 9.81, 0.1) == pytest.approx(12.0 / (12.0 * 9.81 * 0.5))
    assert math.isnan(cost_of_transport(power, mass, np.full((t, 1), 0.05), 9.81, 0.1))  # standing: undefined


def test_alternating_contact_gives_duty_factor_and_stepping_frequency() -> None:
    """A trot of 0.5 s cycles, 0.3 s stance: duty 0.6, every foot touches down four times in 2 s (2 Hz)."""
    first = gait_pattern(air=10, stance=15, cycles=4)  # diagonal pair FR + RL
    second = gait_pattern(air=10, stance=15, cycles=4, lead_air=5)  # FL + RR, half a swing later
    contact = np.stack([first, second, second, first], -1)[:, None]
    assert contact.shape == (100, 1, 4)
    assert duty_factor(contact) == pytest.approx(0.6)
    assert step_frequency(contact, no_ends(100), DT) == pytest.approx(2.0)


def test_swing_apex_is_the_mean_of_each_swings_highest_point() -> None:
    """Swings peaking at 8 and 6 cm: apex 7 cm. A swing cut by the recording's start or by a reset is left out."""
    t = 70
    contact = np.ones((t, 1, 1), dtype=bool)
    height = np.zeros((t, 1, 1))
    contact[0:5] = False
    height[0:5] = 0.5  # before the first touchdown: a fall from the spawn height, no swing
    for start, peak in ((10, 0.08), (30, 0.06), (50, 0.3)):
        contact[start : start + 10] = False
        height[start : start + 10, 0, 0] = peak * np.sin(np.linspace(0.0, np.pi, 10))
    ends = no_ends(t)
    ends[55] = True  # the third swing spans a reset
    assert swing_apex(height, contact, ends) == pytest.approx(0.07, abs=2e-3)  # sampled sine peaks a little under


def test_posture_and_action_rate() -> None:
    """Joints 0.1 rad off the default both ways: 0.1 rad; actions flipping by 1 each step: 1, a reset's jump left out."""
    t = 20
    q = np.tile(GO1.default_joint_pos, (t, 1, 1)) + np.array([0.1, -0.1] * 6)
    assert joint_deviation(q, GO1.default_joint_pos) == pytest.approx(0.1)
    actions = np.where(np.arange(t)[:, None, None] % 2 == 0, 0.5, -0.5) * np.ones((t, 1, 12))
    actions[10:] += 5.0
    ends = no_ends(t)
    ends[9] = True
    assert action_rate(actions, ends) == pytest.approx(1.0)


def test_all_metrics_together_and_the_table() -> None:
    """A recording without base or feet positions (a robot log) scores the rest; the missing ones read n/a / null."""
    traj = trajectory(50, n=2)
    m = gait_metrics(traj)
    assert m.duty_factor == 1.0 and m.step_frequency == 0.0 and m.power == 0.0 and m.joint_deviation == 0.0
    assert math.isnan(m.base_height) and math.isnan(m.cost_of_transport) and m.contact_links == 0
    d = m.as_dict()
    assert d["swing_apex"] is None and d["duty_factor"] == 1.0
    json.dumps(d, allow_nan=False)
    table = format_gait_table({"mujoco": m, "robot log": m}).splitlines()
    assert len(table) == 3 and "step Hz" in table[0] and "|tau|>90% lim" in table[0]
    assert table[2].split()[:3] == ["robot", "log", "n/a"]


def test_config_ranges_hold_in_python() -> None:
    with pytest.raises(ConfigError, match="torque_fraction"):
        GaitMetricsConfig(torque_fraction=1.5)


def test_foot_kinematics_match_mujoco() -> None:
    """Each foot's centre, velocity and spin from the base pose and joint state, as MuJoCo computes them, and the
    velocity of the foot's point at the ground: its lowest point in the air, higher up the sphere when sunk in."""
    model = compile_model(GO1)
    data, idx, rng = mujoco.MjData(model), ModelIndex.of(model, GO1), np.random.default_rng(0)
    for _ in range(5):
        data.qpos[:3], quat = rng.normal(size=3), rng.normal(size=4)
        data.qpos[3:7] = quat / np.linalg.norm(quat)
        data.qpos[idx.qpos] = GO1.default_joint_pos + rng.normal(scale=0.3, size=12)
        data.qvel[:] = rng.normal(size=model.nv)
        mujoco.mj_forward(model, data)
        centre, velocity, spin = foot_kinematics(GO1, mujoco_state(data, idx))
        for k, leg in enumerate(GO1.legs):
            geom = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"{leg}_foot")
            v6 = np.zeros(6)
            mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_GEOM, geom, v6, 0)
            np.testing.assert_allclose(centre[0, k], data.geom_xpos[geom], atol=1e-9)
            np.testing.assert_allclose(velocity[0, k], v6[3:], atol=1e-8)
            np.testing.assert_allclose(spin[0, k], v6[:3], atol=1e-8)
        r = GO1.body.foot_radius
        for ground, depth in ((centre[..., 2] - 1.0, r), (centre[..., 2] - 0.01, 0.01)):  # in the air; sunk in
            expected = velocity + np.cross(spin, np.array([0.0, 0.0, -depth]))
            np.testing.assert_allclose(contact_point_velocity(GO1, centre, velocity, spin, ground), expected, atol=1e-12)


def mujoco_state(data: mujoco.MjData, idx: ModelIndex) -> RobotState:
    """MuJoCo's state as a backend reports it (one robot; no forces)."""

    def row(x: np.ndarray) -> torch.Tensor:
        return torch.tensor(np.asarray(x)[None], dtype=torch.float64)

    zeros = torch.zeros(1, 4)
    return RobotState(
        base_pos=row(data.qpos[:3]),
        base_quat=row(data.qpos[3:7]),
        base_lin_vel_world=row(data.qvel[:3]),
        base_ang_vel_body=row(data.qvel[3:6]),
        joint_pos=row(data.qpos[idx.qpos]),
        joint_vel=row(data.qvel[idx.qvel]),
        joint_torque=torch.zeros(1, 12),
        foot_force=zeros,
        trunk_contact=torch.zeros(1),
        thigh_contact=zeros,
        link_contact=torch.zeros(1, 0),
    )


def test_a_robot_log_gives_the_metrics_it_can(tmp_path: Path) -> None:
    """A deploy log (joint state, torques, actions, foot forces): duty, stepping, torques, posture and actions; not height."""
    run = tmp_path / "run"
    log = RolloutLog(run, {"source": "test"}, chunk_steps=25)
    pattern = gait_pattern(air=10, stance=15, cycles=4)
    for k in range(100):
        force = np.full(4, 60.0 if pattern[k] else 2.0, dtype=np.float32)  # the robot's foot-force units: 20 is stance
        action = np.full(12, 0.2 * (k % 2), dtype=np.float32)
        q = GO1.default_joint_pos.astype(np.float32) + 0.05
        tau = np.full(12, 3.0, dtype=np.float32)
        log.append(
            {
                "time": k * DT,
                "action": action,
                "joint_pos": q,
                "joint_vel": np.ones(12, np.float32),
                "joint_torque": tau,
                "foot_force": force,
            }
        )
    log.close({"reason": "duration"})
    m = log_gait_metrics(run, GO1)
    assert m.duty_factor == pytest.approx(0.6) and m.step_frequency == pytest.approx(2.0)
    assert m.action_rate == pytest.approx(0.2) and m.joint_deviation == pytest.approx(0.05, rel=1e-5)
    assert m.power == pytest.approx(36.0) and m.torque_saturation == 0.0
    assert all(math.isnan(v) for v in (m.base_height, m.swing_apex, m.foot_slip, m.body_contacts_per_minute, m.cost_of_transport))


def test_eval_records_the_gait_without_changing_the_walk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``unio4 eval`` on 2 robots for 1 s in MuJoCo: finite gait metrics over 13 watched links, the same tracking
    numbers as the gate's evaluation (recording changes nothing), the table printed and the JSON written."""
    from unio4.cli import main
    from unio4.sim.config import load_task_config
    from unio4.sim.evaluate import evaluate_bundle

    straight = ["task.commands.lin_vel_x=[0.6,0.6]", "task.commands.lin_vel_y=[0,0]", "task.commands.ang_vel_yaw=[0,0]"]
    out = tmp_path / "eval.json"
    argv = ["eval", str(PRETRAINED), "--backend", "mujoco", "--num-envs", "2", "--seconds", "1", "--out", str(out)]
    assert main([*argv, *(a for s in straight for a in ("--set", s))]) == 0
    printed = capsys.readouterr().out
    assert "gait (docs/gait.md)" in printed and "step Hz" in printed
    row = json.loads(out.read_text())["mujoco"]
    gait = row.pop("gait")
    assert gait["contact_links"] == 13 and all(
        isinstance(v, float) and math.isfinite(v) for k, v in gait.items() if k != "contact_links"
    ), gait
    assert 0.2 < gait["base_height"] < 0.4 and 0.3 < gait["duty_factor"] < 0.9 and gait["step_frequency"] > 0.5, gait
    cfg = load_task_config("go1_flat", [s.removeprefix("task.") for s in straight])
    assert row == evaluate_bundle(PRETRAINED, cfg, "mujoco", 2, 1.0, full_range=True)


def test_robot_state_rows_keep_the_hip_and_calf_contacts() -> None:
    """``select`` and ``to`` carry the hip and calf contacts when a backend reports them, and the empty (N, 0) when not."""
    n = 3
    base = {name: torch.zeros(n, 3) for name in ("base_pos", "base_lin_vel_world", "base_ang_vel_body")}
    fields: dict[str, Any] = {**base, "base_quat": torch.zeros(n, 4), "joint_pos": torch.zeros(n, 12), "joint_vel": torch.zeros(n, 12)}
    fields.update(
        joint_torque=torch.zeros(n, 12), foot_force=torch.zeros(n, 4), trunk_contact=torch.zeros(n), thigh_contact=torch.zeros(n, 4)
    )
    ids = torch.tensor([2, 0])
    assert RobotState(**fields, link_contact=torch.zeros(n, 0)).select(ids).link_contact.shape == (2, 0)
    links = torch.arange(n * 8, dtype=torch.float32).view(n, 8)
    picked = RobotState(**fields, link_contact=links).select(ids).to(torch.device("cpu"))
    assert torch.equal(picked.link_contact, links[ids])
