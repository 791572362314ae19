"""The Go1 velocity-tracking task: a vectorised, gymnasium-style environment in torch.

Written once above :class:`unio4.sim.backends.interface.PhysicsBackend`. ``step`` returns
``(obs, reward, terminated, truncated, info)`` as torch tensors with automatic reset of finished
envs; ``terminated`` (a fall) and ``truncated`` (the episode time-out) are kept apart so learners
bootstrap through time-outs. ``info["final_obs"]``/``info["final_critic_obs"]`` hold the last
observation of envs that just finished (rows of the others are stale) and ``info["critic_obs"]``
the privileged observation for an asymmetric critic.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from unio4.deploy.observations import (
    observation_frame,
    privileged_layout,
    projected_gravity,
    push_history,
    start_history,
)
from unio4.deploy.safety import limit_step, within_joint_range
from unio4.robots.description import load_robot
from unio4.robots.kinematics import foot_positions
from unio4.sim.backends import make_backend
from unio4.sim.backends.interface import Dynamics, PhysicsBackend, RobotState
from unio4.sim.config import TaskConfig
from unio4.sim.randomization import (
    initial_joint_scale,
    noise_enabled,
    observation_noise,
    push_velocities,
    pushes_enabled,
    sample_dynamics,
    sample_latency_substeps,
    uniform,
)
from unio4.sim.rewards import RewardConstants, air_time_step, compute_rewards, reward_inputs
from unio4.sim.terrain import make_terrain


class Go1VelocityTask:
    """``num_envs`` Go1s tracking (vx, vy, yaw-rate) commands."""

    def __init__(
        self,
        cfg: TaskConfig,
        num_envs: int,
        backend: str = "mujoco",
        seed: int = 0,
        num_threads: int | None = None,
        device: str | torch.device = "cpu",
        training: bool = False,
        link_contacts: bool = False,
    ) -> None:
        """``training``: the robots of a learner from scratch (the command curriculum applies, when configured).
        ``link_contacts``: the engine also reports hip and calf contacts (evaluation's gait metrics; same dynamics);
        always on when the ``link_collision`` reward has a weight."""
        self.cfg = cfg
        self.num_envs = num_envs
        self.device = dev = torch.device(device)
        self.robot = load_robot(cfg.robot)
        self.terrain = make_terrain(cfg.terrain)
        link_reward = cfg.rewards.weights.get("link_collision", 0.0) != 0.0
        link_contacts = link_contacts or link_reward
        self.backend: PhysicsBackend = make_backend(
            backend, self.robot, num_envs, self.terrain, num_threads=num_threads, warp=cfg.warp, device=dev, link_contacts=link_contacts
        )
        self.backend_name = backend
        self.gen = torch.Generator(device=dev).manual_seed(seed)  # random streams differ between devices
        rc = self.robot.control
        self.dt = rc.policy_dt
        self.decimation = rc.decimation
        self.max_episode_length = int(math.ceil(cfg.episode_length_s / self.dt))
        self._init_spaces()
        self._init_robot_constants()
        self._init_buffers()
        self._substep = torch.arange(self.decimation, device=dev).view(1, -1, 1)
        self._push_every = max(1, int(round(cfg.randomization.push_interval_s / self.dt)))
        self._resample_every = max(1, int(round(cfg.commands.resample_time_s / self.dt)))
        self.noise_scale = self._noise_scale()
        self.curriculum = training and cfg.commands.curriculum
        self.command_fraction = cfg.commands.curriculum_start if self.curriculum else 1.0
        self._curriculum_scores: list[torch.Tensor] = []
        self.state: RobotState = self.backend.state().to(dev)
        if link_reward and self.state.link_contact.shape[1] == 0:
            raise ValueError(f"backend {backend!r} does not report hip and calf contacts (rewards.weights.link_collision, gait metrics)")
        self.step_state = self.state  # what the last step produced, before resets replaced finished robots in ``state``
        self.terrain.assign(num_envs, self.gen)

    def _init_spaces(self) -> None:
        """Action and observation sizes, and the gymnasium spaces of one env."""
        cfg, nj = self.cfg, self.robot.num_joints
        self.num_actions = nj
        self.num_obs = cfg.observations.size(nj)
        self.frame_layout = cfg.observations.layout(nj)
        self.frame_size = self.frame_layout.size
        self.privileged_layout = privileged_layout(len(self.robot.legs))  # one contact flag per foot
        self.num_critic_obs = self.num_obs + (self.privileged_layout.size if cfg.privileged_critic else 0)
        high = np.full(nj, cfg.action_clip, dtype=np.float32)
        self.single_action_space = gym.spaces.Box(-high, high, dtype=np.float32)
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (self.num_obs,), dtype=np.float32)

    def _init_robot_constants(self) -> None:
        """The robot's default pose, action scales and joint limits, and the constants of its reward inputs."""
        f32, dev = torch.float32, self.device
        self.reward_constants = RewardConstants.for_robot(self.robot, self.cfg.rewards, self.cfg.observations.clock_frequency, self.dt, dev)
        self.default_joint_pos = self.reward_constants.default_joint_pos
        self.action_scales = torch.tensor(self.robot.action_scales, dtype=f32, device=dev)
        self.soft_lower, self.soft_upper = self.reward_constants.soft_lower, self.reward_constants.soft_upper
        self.joint_lower = torch.tensor(self.robot.joint_lower, dtype=f32, device=dev)
        self.joint_upper = torch.tensor(self.robot.joint_upper, dtype=f32, device=dev)
        self.default_foot_z = foot_positions(self.robot, self.default_joint_pos, xp=torch)[..., 2]  # (4,) base frame

    def _init_buffers(self) -> None:
        """Per-env state carried between steps: commands, actions, targets, air time, history, episode sums."""
        n, nj, dev = self.num_envs, self.num_actions, self.device
        self.commands = torch.zeros(n, 3, device=dev)
        self.actions = torch.zeros(n, nj, device=dev)
        self.last_actions = torch.zeros(n, nj, device=dev)
        self.last_targets = self.default_joint_pos.repeat(n, 1)
        self.last_joint_vel = torch.zeros(n, nj, device=dev)
        self.air_time = torch.zeros(n, 4, device=dev)
        self.episode_length = torch.zeros(n, dtype=torch.long, device=dev)
        self.latency_substeps = torch.zeros(n, dtype=torch.long, device=dev)
        self.obs_history = torch.zeros(n, self.num_obs, device=dev)
        self.spawn_xy = torch.zeros(n, 2, device=dev)
        self.walked = torch.zeros(n, device=dev)  # m along the commands this episode (the terrain curriculum)
        self.commanded_path = torch.zeros(n, device=dev)  # m the commands asked for this episode
        ones, zeros = torch.ones(n, device=dev), torch.zeros(n, device=dev)
        self.dynamics = Dynamics(ones, zeros, ones.clone(), ones.clone(), ones.clone())
        self.episode_sums: dict[str, torch.Tensor] = {name: torch.zeros(n, device=dev) for name in self.cfg.rewards.weights}
        self.episode_return = torch.zeros(n, device=dev)

    def _noise_scale(self) -> torch.Tensor:
        """Per-element scale of the observation noise of one frame, segment by segment of its layout."""
        o, nz = self.cfg.observations, self.cfg.randomization.noise
        # The config gives noise in raw units: times the segment's observation scale. Commands, last
        # actions and the gait clock are exact.
        noise = {
            "gyro": nz.gyro * o.ang_vel_scale,
            "projected_gravity": nz.gravity,
            "joint_pos": nz.joint_pos * o.dof_pos_scale,
            "joint_vel": nz.joint_vel * o.dof_vel_scale,
        }
        return torch.cat([torch.full((size,), noise.get(name, 0.0)) for name, size in self.frame_layout.segments]).to(self.device)

    # ---- gymnasium-style API ------------------------------------------------------------------
    @property
    def episode_time(self) -> torch.Tensor:
        """(N,) seconds since each env's episode started: the policy's clock (gait clock input)."""
        return self.episode_length.float() * self.dt

    def reset(self, seed: int | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        """Reset every env; returns (obs, info) with ``info['critic_obs']``."""
        if seed is not None:
            self.gen.manual_seed(seed)
            self.terrain.assign(self.num_envs, self.gen)
        self._reset_envs(torch.arange(self.num_envs, device=self.device), curriculum=False)
        self.state = self.backend.state().to(self.device)
        lin_vel, _, height = self._kinematics(self.state)
        obs, critic = self._observe(self.state, lin_vel, height, ids=torch.arange(self.num_envs, device=self.device))
        return obs, {"critic_obs": critic}

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """One policy step of every env: ``(obs, reward, terminated, truncated, info)``, finished envs reset."""
        state = self._actuate(actions)
        base_lin_vel, gravity, height = self._kinematics(state)
        terminated, truncated = self._episode_ends(state, gravity, height)
        reward, parts = self._reward(state, base_lin_vel, gravity, height, terminated)
        self._track_progress(base_lin_vel)
        self.last_actions = self.actions
        self.last_joint_vel = state.joint_vel
        self._resample_and_push()
        obs, critic = self._observe(state, base_lin_vel, height)
        info: dict[str, Any] = {"critic_obs": critic, "reward_terms": parts}
        self._reset_finished(terminated | truncated, terminated, obs, critic, info)
        return obs, reward, terminated, truncated, info

    def curriculum_state(self) -> dict[str, Any]:
        """Where the command and terrain curricula stand: saved in training checkpoints, so that a
        resumed run goes on from there instead of from the first command range and terrain level."""
        return {"command_fraction": self.command_fraction, "terrain_levels": self.terrain.levels.cpu().clone()}

    def load_curriculum_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`curriculum_state` (levels only for the same number of robots); robots spawn
        on their restored levels at their next reset."""
        if self.curriculum:
            self.command_fraction = min(1.0, max(0.0, float(state["command_fraction"])))
        levels = state.get("terrain_levels")
        if isinstance(levels, torch.Tensor) and levels.shape == self.terrain.levels.shape:
            self.terrain.levels = levels.to(self.terrain.levels.device)

    def close(self) -> None:
        self.backend.close()

    # ---- internals ----------------------------------------------------------------------------
    def set_dynamics(self, ids: torch.Tensor, dynamics: Dynamics) -> None:
        """Give envs ``ids`` these dynamics parameters (in the engine, and as the critic observes them)."""
        self.backend.set_dynamics(ids, dynamics)
        for field_name in ("friction", "added_mass", "kp_scale", "kd_scale", "motor_strength"):
            getattr(self.dynamics, field_name)[ids] = getattr(dynamics, field_name).to(self.device)

    def _actuate(self, actions: torch.Tensor) -> RobotState:
        """Clip the actions, shape them into PD targets and run the engine's substeps (latency included)."""
        cfg = self.cfg
        self.actions = actions.detach().to(torch.float32).clamp(-cfg.action_clip, cfg.action_clip)
        targets = self.default_joint_pos + self.action_scales * self.actions
        if cfg.targets.enabled:  # as the robot's safety layer shapes them (deploy.safety)
            targets = limit_step(torch, targets, self.last_targets, cfg.targets.max_rate * self.dt)
            targets = within_joint_range(torch, targets, self.joint_lower, self.joint_upper, cfg.targets.joint_margin_rad)
        delayed = self._substep < self.latency_substeps.view(-1, 1, 1)
        seq = torch.where(delayed, self.last_targets.unsqueeze(1), targets.unsqueeze(1))
        self.last_targets = targets
        state = self.backend.step(seq).to(self.device)  # CPU engines hand back CPU tensors
        self.state = self.step_state = state
        self.episode_length += 1
        return state

    def _episode_ends(self, state: RobotState, gravity: torch.Tensor, height: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(terminated, truncated): a fall (tilt, low base, trunk contact), and the time-out of the others."""
        cfg = self.cfg
        term = cfg.termination
        terminated = gravity[:, 2] > -math.cos(term.max_tilt)
        terminated |= height < term.min_base_height
        if term.trunk_contact:
            terminated |= state.trunk_contact > cfg.rewards.contact_threshold
        truncated = (self.episode_length >= self.max_episode_length) & ~terminated
        return terminated, truncated

    def _reward(
        self, state: RobotState, base_lin_vel: torch.Tensor, gravity: torch.Tensor, height: torch.Tensor, terminated: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """This step's reward and weighted terms, added to the episode sums; the feet's air time moves on."""
        contact = state.foot_force > self.cfg.rewards.contact_threshold
        first_contact, air_time_at_touchdown, self.air_time = air_time_step(self.air_time, contact, self.dt)
        inputs = reward_inputs(
            self.reward_constants,
            commands=self.commands,
            base_lin_vel=base_lin_vel,
            base_ang_vel=state.base_ang_vel_body,
            projected_gravity=gravity,
            base_height=height,
            joint_pos=state.joint_pos,
            joint_vel=state.joint_vel,
            joint_torque=state.joint_torque,
            foot_force=state.foot_force,
            foot_lift=foot_positions(self.robot, state.joint_pos, xp=torch)[..., 2] - self.default_foot_z,
            actions=self.actions,
            last_actions=self.last_actions,
            last_joint_vel=self.last_joint_vel,
            first_contact=first_contact,
            air_time=air_time_at_touchdown,
            body_contact=(state.trunk_contact, state.thigh_contact),
            terminated=terminated,
            time=self.episode_time,
            link_contact=state.link_contact,
        )
        reward, parts = compute_rewards(inputs, self.cfg.rewards)
        for name, value in parts.items():
            self.episode_sums[name] += value
        self.episode_return += reward
        return reward, parts

    def _resample_and_push(self) -> None:
        """New commands for envs at their resampling step; a push for envs at their push step."""
        cfg = self.cfg
        step_ids = self.episode_length
        resample = torch.nonzero(step_ids % self._resample_every == 0).flatten()
        if resample.numel():
            self._sample_commands(resample)
        if pushes_enabled(cfg.randomization):
            push = torch.nonzero(step_ids % self._push_every == 0).flatten()
            if push.numel():
                self.backend.push(push, push_velocities(cfg.randomization, push.numel(), self.gen))

    def _track_progress(self, base_lin_vel: torch.Tensor) -> None:
        """Add this step's distance along the commanded direction, and the commanded distance, to the episode's."""
        command = self.commands[:, :2]
        speed = torch.norm(command, dim=1)
        along = (base_lin_vel[:, :2] * command).sum(dim=1) / speed.clamp(min=1e-6)
        self.walked += along * self.dt
        self.commanded_path += speed * self.dt

    def _reset_finished(
        self, done: torch.Tensor, terminated: torch.Tensor, obs: torch.Tensor, critic: torch.Tensor, info: dict[str, Any]
    ) -> None:
        """Reset the envs that just finished: their last observations go to ``info``, their first into ``obs``/``critic``."""
        done_ids = torch.nonzero(done).flatten()
        if not done_ids.numel():
            return
        info["final_obs"] = obs.clone()
        info["final_critic_obs"] = critic.clone()
        info["episode"] = self._episode_stats(done_ids)
        self._reset_envs(done_ids, curriculum=True, fell=terminated[done_ids])
        self.state = self.backend.state().to(self.device)
        fresh = self.state.select(done_ids)
        lin_vel, _, fresh_height = self._kinematics(fresh)
        obs[done_ids], critic[done_ids] = self._observe(fresh, lin_vel, fresh_height, ids=done_ids)

    def _kinematics(self, state: RobotState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Base linear velocity (base frame), projected gravity and height above the terrain."""
        lin_vel = state.base_lin_vel_body()
        height = state.base_pos[:, 2] - self.terrain.height_at(state.base_pos[:, :2])
        return lin_vel, projected_gravity(torch, state.base_quat), height

    def _observe(
        self, state: RobotState, lin_vel: torch.Tensor, height: torch.Tensor, ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Actor and critic observations of every env, or of envs ``ids`` that just started an episode.

        ``state``, ``lin_vel`` and ``height`` hold the rows of those envs. Every env's history gets one
        frame per step; a fresh env's history is filled with its first frame.
        """
        cfg = self.cfg
        rows = slice(None) if ids is None else ids
        frame = observation_frame(
            torch,
            cfg.observations,
            state.base_quat,
            state.base_ang_vel_body,
            state.joint_pos,
            state.joint_vel,
            self.commands[rows],
            self.last_actions[rows],
            self.default_joint_pos,
            self.episode_time[rows] if cfg.observations.clock_frequency > 0 else None,
        )
        clean_frame = frame
        if noise_enabled(cfg.randomization):
            frame = frame + observation_noise(self.noise_scale, frame.shape, self.gen)
        if cfg.observations.history_length == 1:
            obs = frame
        elif ids is None:
            self.obs_history = obs = push_history(torch, self.obs_history, frame)
        else:
            obs = start_history(torch, frame, cfg.observations.history_length)
            self.obs_history[ids] = obs
        if not cfg.privileged_critic:
            return obs, obs
        critic_frame = clean_frame if cfg.observations.history_length == 1 else obs
        return obs, torch.cat([critic_frame, self._privileged(state, lin_vel, height, rows)], 1)

    def _privileged(self, state: RobotState, lin_vel: torch.Tensor, height: torch.Tensor, rows: slice | torch.Tensor) -> torch.Tensor:
        """The privileged critic's extra values of envs ``rows``, in the order of :attr:`privileged_layout`."""
        state_values = {
            "base_lin_vel": lin_vel * 2.0,
            "base_height": height.unsqueeze(1),
            "foot_contact": (state.foot_force > self.cfg.rewards.contact_threshold).float(),
        }
        # the other segments are dynamics parameters, named as the fields of Dynamics
        d = self.dynamics
        parts = [
            state_values[name] if name in state_values else getattr(d, name)[rows].unsqueeze(1) for name in self.privileged_layout.names
        ]
        return torch.cat(parts, 1)

    def _sample_commands(self, ids: torch.Tensor) -> None:
        c, k = self.cfg.commands, ids.numel()
        cmd = torch.stack(
            [uniform(self.gen, *c.lin_vel_x, (k,)), uniform(self.gen, *c.lin_vel_y, (k,)), uniform(self.gen, *c.ang_vel_yaw, (k,))], 1
        )
        if self.command_fraction < 1.0:
            cmd = cmd * self.command_fraction
        small = torch.norm(cmd[:, :2], dim=1) < c.zero_below
        cmd[small, :2] = 0.0
        self.commands[ids] = cmd

    def _episode_stats(self, ids: torch.Tensor) -> dict[str, float]:
        stats = {f"reward/{name}": float(v[ids].mean() / self.cfg.episode_length_s) for name, v in self.episode_sums.items()}
        stats["return"] = float(self.episode_return[ids].mean())
        stats["length"] = float(self.episode_length[ids].float().mean())
        if self.curriculum:
            stats["command_fraction"] = self.command_fraction
        if not self.terrain.is_flat:
            stats["terrain_level"] = self.terrain.mean_level
        return stats

    def _update_terrain_curriculum(self, ids: torch.Tensor, fell: torch.Tensor | None) -> None:
        """Move the robots that just ended up or down a level by how far they walked (``terrain.curriculum_rule``)."""
        if self.cfg.terrain.curriculum_rule == "progress":
            self.terrain.update_curriculum(ids, self.walked[ids], self.commanded_path[ids], self.gen, fell)
            return
        distance = torch.norm(self.state.base_pos[ids, :2] - self.spawn_xy[ids], dim=1)
        commanded = torch.norm(self.commands[ids, :2], dim=1) * self.cfg.episode_length_s
        self.terrain.update_curriculum(ids, distance, commanded, self.gen)

    def _update_command_curriculum(self, ids: torch.Tensor) -> None:
        """Widen the command ranges once the finished episodes of about one per robot track well enough."""
        c = self.cfg.commands
        weight = self.cfg.rewards.weights.get("tracking_lin_vel", 0.0)
        if not self.curriculum or weight <= 0 or self.command_fraction >= 1.0:
            return
        scale = weight * (self.dt if self.cfg.rewards.scale_by_dt else 1.0)
        per_step = self.episode_sums["tracking_lin_vel"][ids] / (scale * self.episode_length[ids].clamp(min=1))
        self._curriculum_scores.append(per_step)
        if sum(int(x.numel()) for x in self._curriculum_scores) >= self.num_envs:
            if float(torch.cat(self._curriculum_scores).mean()) > c.curriculum_threshold:
                self.command_fraction = min(1.0, self.command_fraction + c.curriculum_step)
            self._curriculum_scores = []

    def _reset_envs(self, ids: torch.Tensor, curriculum: bool, fell: torch.Tensor | None = None) -> None:
        n, rnd = ids.numel(), self.cfg.randomization
        if curriculum:
            self._update_command_curriculum(ids)
            self._update_terrain_curriculum(ids, fell)
        self.walked[ids] = 0.0
        self.commanded_path[ids] = 0.0
        xy = self.terrain.origins(self.terrain.levels[ids], self.terrain.types[ids])
        if not self.terrain.is_flat:
            xy = xy + uniform(self.gen, -0.5, 0.5, (n, 2))
        self.spawn_xy[ids] = xy
        z = self.terrain.spawn_height_at(xy) + self.robot.control.spawn_height
        yaw = uniform(self.gen, -math.pi, math.pi, (n,))
        zero = torch.zeros(n, device=self.device)
        quat = torch.stack([torch.cos(yaw / 2), zero, zero, torch.sin(yaw / 2)], 1)
        joint_pos = (self.default_joint_pos * initial_joint_scale(rnd, n, self.gen)).clamp(self.soft_lower, self.soft_upper)
        zeros3 = torch.zeros(n, 3, device=self.device)
        still = torch.zeros(n, self.num_actions, device=self.device)
        self.backend.reset(ids, torch.cat([xy, z.unsqueeze(1)], 1), quat, zeros3, zeros3, joint_pos, still)
        dyn = sample_dynamics(rnd, self.robot, n, self.gen)
        self.latency_substeps[ids] = sample_latency_substeps(rnd, self.robot, n, self.gen)
        self.set_dynamics(ids, dyn)
        self._sample_commands(ids)
        self.actions[ids] = 0.0
        self.last_actions[ids] = 0.0
        self.last_targets[ids] = joint_pos
        self.last_joint_vel[ids] = 0.0
        self.air_time[ids] = 0.0
        self.episode_length[ids] = 0
        self.episode_return[ids] = 0.0
        for v in self.episode_sums.values():
            v[ids] = 0.0
