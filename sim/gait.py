"""A model-free trot for the Go1: foot trajectories + leg inverse kinematics + the task's PD.

It walks without learning and is the behaviour policy of the first logged dataset. Diagonal
legs (FR+RL, FL+RR) alternate; each foot follows a stance line and a swing arc in its hip frame,
the step length follows the commanded velocity with a Raibert-style correction on the velocity
error, and stance feet are raised/lowered to level the body. Output is in the task's action space
(``(q* - q_default) / action_scale``), so its logs are directly usable for offline RL.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from unio4.configs.loader import bounded, finite
from unio4.deploy.observations import projected_gravity, rotate_inverse
from unio4.robots.description import RobotDescription

if TYPE_CHECKING:
    from unio4.sim.task import Go1VelocityTask


@dataclass(frozen=True)
class GaitConfig:
    frequency: float = bounded(3.0, gt=0, le=10)  # Hz, full gait cycle
    duty: float = bounded(0.5, gt=0, lt=1)  # stance fraction
    clearance: float = bounded(0.08, ge=0, le=0.3)  # m, swing height
    speed_gain: float = finite(0.0)  # Raibert gain on the velocity error (m per m/s)
    attitude_gain: float = finite(0.3)  # m of foot height per rad of roll/pitch
    max_step: float = bounded(0.2, ge=0)  # m, largest stance stroke
    stroke_gain: float = bounded(1.5, ge=0)  # commanded stroke / ideal stroke: the soft PD lags its targets
    gravity_compensation: float = bounded(1.0, ge=0)  # fraction of the stance load fed forward as tau / Kp
    # The task's PD (Kp 20, Kd 0.5) is too soft to track a trot; the controller sees joint state
    # and shapes its targets so the actuator behaves like this stiffer PD.
    virtual_kp: float = bounded(60.0, ge=0)
    virtual_kd: float = bounded(1.5, ge=0)


class LegKinematics:
    """Forward/inverse kinematics of all legs at once, in each leg's hip-joint frame."""

    def __init__(self, robot: RobotDescription) -> None:
        b = robot.body
        self.l1 = torch.tensor([robot.leg_sign(leg) * b.thigh_offset_y for leg in robot.legs])
        self.l2, self.l3 = b.thigh_length, b.calf_length

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        """Foot positions (..., 4, 3) from joint angles (..., 12)."""
        q = q.view(*q.shape[:-1], 4, 3)
        q1, q2, q3 = q[..., 0], q[..., 1], q[..., 2]
        px = -self.l2 * torch.sin(q2) - self.l3 * torch.sin(q2 + q3)
        pz = -self.l2 * torch.cos(q2) - self.l3 * torch.cos(q2 + q3)
        y = self.l1 * torch.cos(q1) - pz * torch.sin(q1)
        z = self.l1 * torch.sin(q1) + pz * torch.cos(q1)
        return torch.stack([px, y, z], -1)

    def inverse(self, p: torch.Tensor) -> torch.Tensor:
        """Joint angles (..., 12) putting the feet at ``p`` (..., 4, 3); knees bend backwards."""
        px, py, pz = p[..., 0], p[..., 1], p[..., 2]
        h = torch.sqrt((py * py + pz * pz - self.l1 * self.l1).clamp(min=1e-6))
        q1 = torch.atan2(pz, py) - torch.atan2(-h, self.l1)
        reach = (px * px + h * h).clamp(max=(self.l2 + self.l3 - 1e-4) ** 2)
        cos3 = ((reach - self.l2**2 - self.l3**2) / (2 * self.l2 * self.l3)).clamp(-1.0, 1.0)
        q3 = -torch.acos(cos3)
        a = self.l2 + self.l3 * torch.cos(q3)
        b = self.l3 * torch.sin(q3)
        q2 = torch.atan2(-a * px - b * h, -b * px + a * h)
        return torch.stack([q1, q2, q3], -1).flatten(-2)

    def jacobian(self, q: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
        """d foot / d (hip, thigh, calf) per leg, (..., 4, 3 xyz, 3 joints), by central differences."""
        cols = []
        for j in range(3):
            dq = torch.zeros(12)
            dq[j::3] = eps
            cols.append((self.forward(q + dq) - self.forward(q - dq)) / (2 * eps))
        return torch.stack(cols, -1)


class TrotController:
    """Batched trot: ``act(base state, joint state, commands, time)`` -> actions in the task's action space."""

    def __init__(self, robot: RobotDescription, cfg: GaitConfig | None = None) -> None:
        self.cfg = cfg or GaitConfig()
        self.kin = LegKinematics(robot)
        self.default_q = torch.tensor(robot.default_joint_pos, dtype=torch.float32)
        self.scales = torch.tensor(robot.action_scales, dtype=torch.float32)
        self.nominal = self.kin.forward(self.default_q)  # (4, 3)
        self.phase_offset = torch.tensor([0.0, 0.5, 0.5, 0.0])  # FR, FL, RR, RL: diagonal pairs
        hips = torch.tensor([robot.body.hip_offsets[leg] for leg in robot.legs], dtype=torch.float32)
        self.hip_xy = hips[:, :2]
        self.kp, self.kd = robot.control.kp, robot.control.kd
        self.weight = 9.81 * robot.total_mass

    @classmethod
    def for_task(cls, task: Go1VelocityTask, cfg: GaitConfig | None = None) -> TrotController:
        """A trot for ``task`` whose cycle follows the task's gait clock input, when it has one."""
        cfg = cfg or GaitConfig()
        clock = task.cfg.observations.clock_frequency
        return cls(task.robot, replace(cfg, frequency=clock) if clock > 0 else cfg)

    def act(
        self,
        base_quat: torch.Tensor,
        base_lin_vel_world: torch.Tensor,
        joint_pos: torch.Tensor,
        joint_vel: torch.Tensor,
        commands: torch.Tensor,
        time_s: torch.Tensor,
    ) -> torch.Tensor:
        c = self.cfg
        phase = (time_s.view(-1, 1) * c.frequency + self.phase_offset) % 1.0  # (N, 4)
        stance = phase < c.duty
        vel = rotate_inverse(torch, base_quat, base_lin_vel_world)[:, :2]  # (N, 2) base frame
        cmd = commands[:, :2]
        stroke = (c.stroke_gain * cmd * c.duty / c.frequency).clamp(-c.max_step, c.max_step)  # (N, 2)
        # Stance: the foot moves from +stroke/2 to -stroke/2; swing: back again along an arc.
        s_stance = phase / c.duty
        s_swing = (phase - c.duty) / (1.0 - c.duty)
        raibert = c.speed_gain * (vel - cmd)  # land further ahead when too fast
        along = torch.where(stance, 0.5 - s_stance, -0.5 + (1 - torch.cos(torch.pi * s_swing.clamp(0, 1))) / 2).unsqueeze(
            -1
        ) * stroke.unsqueeze(1)
        along = along + torch.where(stance, 0.0, 1.0).unsqueeze(-1) * raibert.unsqueeze(1) * s_swing.clamp(0, 1).unsqueeze(-1)
        lift = torch.where(stance, torch.zeros_like(phase), c.clearance * torch.sin(torch.pi * s_swing.clamp(0, 1)))
        # Level the body: lower the feet on the side that is tilted up.
        g = projected_gravity(torch, base_quat)
        pitch, roll = -g[:, 0:1], g[:, 1:2]  # small-angle estimates
        level = c.attitude_gain * (pitch * self.hip_xy[:, 0] - roll * self.hip_xy[:, 1])  # (N, 4)
        feet = self.nominal.expand(phase.shape[0], 4, 3).clone()
        feet[..., 0:2] += along
        feet[..., 2] += lift + level * stance.float()
        q = self.kin.inverse(feet)
        # Feed forward the joint torque that carries the body (tau = -J^T F, F = load up).
        load = c.gravity_compensation * self.weight / stance.float().sum(1, keepdim=True).clamp(min=1.0)  # (N, 1)
        tau = -self.kin.jacobian(q)[..., 2, :] * (load * stance.float()).unsqueeze(-1)  # (N, 4, 3)
        torque = c.virtual_kp * (q - joint_pos) - (c.virtual_kd - self.kd) * joint_vel + tau.flatten(-2)
        target = joint_pos + torque / self.kp
        return (target - self.default_q) / self.scales

    def act_task(self, task: Go1VelocityTask) -> torch.Tensor:
        """Actions for every env of ``task`` from its current state, commands and episode time.

        The controller computes on the CPU (it drives data collection and benchmarks, not training)."""
        s = task.state.to(torch.device("cpu"))
        actions = self.act(s.base_quat, s.base_lin_vel_world, s.joint_pos, s.joint_vel, task.commands.cpu(), task.episode_time.cpu())
        return actions.to(task.device)


@dataclass(frozen=True)
class WalkResult:
    distance: torch.Tensor  # (N,) m covered in the plane
    fell: torch.Tensor  # (N,) bool: terminated at least once


def walk(task: Go1VelocityTask, seconds: float, controller: TrotController | None = None) -> WalkResult:
    """Reset ``task`` and trot for ``seconds``; report distance and falls per env."""
    controller = controller or TrotController.for_task(task)
    task.reset()
    start = task.state.base_pos[:, :2].clone()
    fell = torch.zeros(task.num_envs, dtype=torch.bool, device=task.device)
    for _ in range(int(round(seconds / task.dt))):
        _, _, terminated, _, _ = task.step(controller.act_task(task))
        fell |= terminated
    return WalkResult(torch.norm(task.state.base_pos[:, :2] - start, dim=1), fell)
