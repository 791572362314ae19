"""The Go1 task on the MuJoCo backend: determinism, standing, episode ends, terrain."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from unio4.sim.config import load_task_config
from unio4.sim.gait import LegKinematics, walk
from unio4.sim.task import Go1VelocityTask

STILL = ["commands.lin_vel_x=[0,0]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]"]


def rollout(seed: int, steps: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    task = Go1VelocityTask(load_task_config("go1_flat"), 6, seed=seed)
    obs, _ = task.reset()
    gen = torch.Generator().manual_seed(123)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, _, _, _ = task.step(torch.randn(6, 12, generator=gen))
        observations.append(obs)
        rewards.append(reward)
    task.close()
    return torch.stack(observations), torch.stack(rewards)


def test_same_seed_same_rollout() -> None:
    obs_a, rew_a = rollout(seed=3)
    obs_b, rew_b = rollout(seed=3)
    obs_c, _ = rollout(seed=4)
    assert torch.equal(obs_a, obs_b) and torch.equal(rew_a, rew_b)
    assert not torch.equal(obs_a, obs_c)


def test_standing_10s_keeps_nominal_height() -> None:
    cfg = load_task_config("go1_flat", [*STILL, "randomization.enabled=false"])
    task = Go1VelocityTask(cfg, 4, seed=0)
    task.reset()
    nominal = task.robot.control.nominal_base_height
    heights = []
    for _ in range(int(10.0 / task.dt)):
        _, _, terminated, _, _ = task.step(torch.zeros(4, 12))
        assert not terminated.any()
        heights.append(task.state.base_pos[:, 2].clone())
    late = torch.stack(heights[50:])  # after the 1 s drop from the spawn height
    assert (late - nominal).abs().max() < 0.02, f"height range {late.min():.3f}..{late.max():.3f}, nominal {nominal}"
    task.close()


def test_truncation_and_termination_are_distinct() -> None:
    cfg = load_task_config("go1_flat", [*STILL, "randomization.enabled=false", "episode_length_s=0.2"])
    task = Go1VelocityTask(cfg, 2, seed=0)
    task.reset()
    for step in range(1, 11):
        obs, _, terminated, truncated, info = task.step(torch.zeros(2, 12))
        assert not terminated.any()
        assert bool(truncated.all()) == (step == 10)
    assert "final_obs" in info and info["final_obs"].shape == obs.shape
    assert (task.episode_length == 0).all()  # auto-reset
    # A robot that is flipped over terminates (not truncates).
    task.backend.reset(
        torch.tensor([0]),
        torch.tensor([[0.0, 0.0, 0.3]]),
        torch.tensor([[0.0, 1.0, 0.0, 0.0]]),
        torch.zeros(1, 3),
        torch.zeros(1, 3),
        task.default_joint_pos.unsqueeze(0),
        torch.zeros(1, 12),
    )
    _, _reward, terminated, truncated, info = task.step(torch.zeros(2, 12))
    assert terminated.tolist() == [True, False] and not truncated.any()
    assert info["reward_terms"]["termination"][0] < 0
    task.close()


def test_history_advances_one_frame_per_step_across_resets() -> None:
    cfg = load_task_config("go1_flat", [*STILL, "randomization.enabled=false", "observations.history_length=3"])
    task = Go1VelocityTask(cfg, 2, seed=0)
    obs, _ = task.reset()
    frame = task.frame_size
    assert torch.equal(obs[:, :frame], obs[:, frame : 2 * frame])  # a fresh history repeats its first frame
    task.episode_length[0] = task.max_episode_length - 1  # env 0 times out on the next step
    before = obs.clone()
    obs, _, _, truncated, _ = task.step(torch.zeros(2, 12))
    assert truncated.tolist() == [True, False]
    assert torch.equal(obs[1, : 2 * frame], before[1, frame:])  # env 1: shifted by exactly one frame
    assert torch.equal(obs[0, :frame], obs[0, 2 * frame :])  # env 0: restarted history
    task.close()


def test_rough_terrain_spawns_on_tiles_and_curriculum_moves() -> None:
    cfg = load_task_config("go1_rough", ["terrain.max_init_level=0"])
    task = Go1VelocityTask(cfg, 8, seed=0)
    task.reset()
    ground = task.terrain.spawn_height_at(task.state.base_pos[:, :2])
    assert (task.state.base_pos[:, 2] - ground - task.robot.control.spawn_height).abs().max() < 1e-5
    # ... above the highest sample under the footprint, never below the one under the base
    assert (ground - task.terrain.height_at(task.state.base_pos[:, :2]) >= cfg.terrain.spawn_clearance - 1e-6).all()
    for _ in range(50):  # standing on the terrain: the heightfield holds the robots up
        task.step(torch.zeros(8, 12))
    height = task.state.base_pos[:, 2] - task.terrain.height_at(task.state.base_pos[:, :2])
    assert (height > 0.15).all(), height
    ids = torch.arange(8)
    far = torch.full((8,), cfg.terrain.tile_size)
    task.terrain.update_curriculum(ids, far, torch.ones(8), task.gen)
    assert (task.terrain.levels == 1).all()
    task.terrain.update_curriculum(ids, torch.zeros(8), torch.ones(8) * 5, task.gen)
    assert (task.terrain.levels == 0).all()
    task.terrain.update_curriculum(ids, far, torch.ones(8), task.gen, fell=torch.ones(8, dtype=torch.bool))
    assert (task.terrain.levels == 0).all()  # a fall never moves up, however far the robot got first
    task.close()


def test_the_heightfield_has_a_flat_border_around_its_tiles() -> None:
    cfg = load_task_config("go1_rough").terrain
    task = Go1VelocityTask(load_task_config("go1_rough"), 2, seed=0)
    spec, terrain = task.terrain.spec, task.terrain
    assert spec is not None
    corners = terrain.origins(torch.tensor([0, cfg.num_levels - 1]), torch.tensor([0, len(cfg.types) - 1]))
    edge = torch.tensor([spec.size_x, spec.size_y]) - corners.abs().amax(dim=0)
    assert (edge >= cfg.border_size + cfg.tile_size / 2 - 0.1).all(), edge  # outer tiles are a border away from the edge
    ring = torch.tensor([[-spec.size_x + 0.5, 0.0], [spec.size_x - 0.5, 0.0], [0.0, -spec.size_y + 0.5], [0.0, spec.size_y - 0.5]])
    assert (terrain.height_at(ring) == 0).all()
    # beyond the edge a plane holds a robot up: spawned 1 m outside the map, it stands
    outside = torch.tensor([[spec.size_x + 1.0, 0.0, 0.3], [0.0, -spec.size_y - 1.0, 0.3]])
    s, n = task.state, torch.arange(2)
    task.backend.reset(n, outside, s.base_quat, s.base_lin_vel_world * 0, s.base_ang_vel_body * 0, s.joint_pos, s.joint_vel * 0)
    for _ in range(50):
        task._actuate(torch.zeros(2, 12))
    assert (task.state.base_pos[:, 2] > 0.2).all(), task.state.base_pos
    task.close()


def test_the_terrain_curriculum_credits_walking_along_turning_commands() -> None:
    """A robot that tracks a turning command covers its commanded path but not the straight line
    legged_gym measures: the "progress" rule moves it up, a fall moves it down."""
    cfg = load_task_config("go1_rough", ["terrain.max_init_level=2"])
    task = Go1VelocityTask(cfg, 4, seed=0)
    task.reset()
    ids = torch.arange(4)
    start = task.terrain.levels.clone()
    task.commands[:] = torch.tensor([0.5, 0.0, 1.0])  # a 0.5 m circle: the straight line never exceeds 1 m
    for _ in range(int(cfg.episode_length_s / task.dt)):
        task._track_progress(task.commands[:, :2])  # a perfect tracker
    assert torch.allclose(task.walked, task.commanded_path) and (task.walked > cfg.terrain.tile_size / 2).all()
    task._reset_envs(ids[:2], curriculum=True, fell=torch.tensor([False, True]))
    assert task.terrain.levels[0] == start[0] + 1 and task.terrain.levels[1] == (start[1] - 1).clamp(min=0)
    assert (task.walked[:2] == 0).all() and (task.walked[2:] > 0).all()  # a reset starts the robot's count again
    task.close()


def test_a_flat_heightfield_walks_like_the_plane() -> None:
    """The built-in trot covers the same ground on a flat heightfield as on the plane: the soft foot pads
    sinking below the heightfield's prisms used to catch on their sides (0.5-2.0 m here against 2.1 m)."""
    flat = ["terrain.max_slope=0", "terrain.max_roughness=0", "terrain.max_step_height=0", "terrain.max_obstacle_height=0"]
    straight = ["commands.lin_vel_x=[0.8,0.8]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]", "randomization.enabled=false"]
    distances = []
    for floor in (["terrain.type=flat"], ["terrain.max_init_level=0", "terrain.curriculum=false"]):
        task = Go1VelocityTask(load_task_config("go1_rough", flat + straight + floor), 4, seed=0)
        result = walk(task, 5.0)
        task.close()
        assert not result.fell.any()
        distances.append(result.distance)
    plane, heightfield = distances
    assert (heightfield / plane).min() > 0.85 and (heightfield / plane).max() < 1.2, (plane, heightfield)


def test_domain_randomisation_changes_dynamics() -> None:
    task = Go1VelocityTask(load_task_config("go1_flat"), 16, seed=0)
    task.reset()
    backend = task.backend
    masses = {float(m.body_mass[1]) for m in backend.models}  # type: ignore[attr-defined]
    gains = {float(m.actuator_gainprm[0, 0]) for m in backend.models}  # type: ignore[attr-defined]
    assert len(masses) == 16 and len(gains) == 16
    assert task.latency_substeps.max() > 0
    task.close()


def test_foot_contact_randomisation_stiffens_the_feet_and_leaves_other_draws_alone() -> None:
    """``randomization.foot_contact`` 1 is a stiff contact: the feet sink less, so a standing Go1 rides
    higher. Left at its default it draws nothing: every other draw, and so the rollout, is unchanged."""
    heights = {}
    for blend in ("[0,0]", "[1,1]"):
        cfg = load_task_config("go1_flat", [*STILL, f"randomization.foot_contact={blend}", "randomization.push_interval_s=100"])
        task = Go1VelocityTask(cfg, 4, seed=0)
        task.reset()
        for _ in range(100):
            task.step(torch.zeros(4, 12))
        heights[blend] = task.state.base_pos[:, 2].clone()
        task.close()
    rise = heights["[1,1]"] - heights["[0,0]"]
    assert (rise > 0.004).all() and rise.mean() > 0.01, heights  # the soft pads sink 1-2 cm
    default_cfg = load_task_config("go1_flat", [*STILL, "randomization.push_interval_s=100"])
    task = Go1VelocityTask(default_cfg, 4, seed=0)
    task.reset()
    for _ in range(100):
        task.step(torch.zeros(4, 12))
    assert torch.equal(task.state.base_pos[:, 2], heights["[0,0]"])
    task.close()


def test_leg_inverse_kinematics_round_trip(go1) -> None:  # type: ignore[no-untyped-def]
    kin = LegKinematics(go1)
    gen = torch.Generator().manual_seed(0)
    q = torch.tensor(go1.default_joint_pos, dtype=torch.float32) + 0.3 * torch.randn(64, 12, generator=gen)
    assert (kin.inverse(kin.forward(q)) - q).abs().max() < 1e-4


def test_gait_walks_2m_in_10s_over_10_randomised_robots() -> None:
    """The built-in trot, on 10 robots each drawn from the task's randomisation, covers 2 m in 10 s without a fall."""
    cfg = load_task_config("go1_flat", ["commands.lin_vel_x=[0.8,0.8]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]"])
    task = Go1VelocityTask(cfg, 10, seed=0)
    result = walk(task, 10.0)
    task.close()
    assert not result.fell.any(), f"fell: robots {result.fell.nonzero().flatten().tolist()}"
    assert float(result.distance.min()) >= 2.0, [round(float(d), 2) for d in result.distance]


def test_command_curriculum_widens_only_for_training() -> None:
    cfg = load_task_config("go1_flat", ["randomization.enabled=false", "episode_length_s=0.2", "commands.resample_time_s=0.1"])
    learner = Go1VelocityTask(cfg, 4, seed=0, training=True)
    judge = Go1VelocityTask(cfg, 64, seed=0)
    learner.reset(seed=0)
    judge.reset(seed=0)
    assert learner.command_fraction == pytest.approx(0.3) and judge.command_fraction == 1.0
    assert float(learner.commands.abs().max()) <= 0.3 + 1e-6
    fractions = []
    for _ in range(60):  # standing still tracks the small commands well: the ranges widen
        learner.step(torch.zeros(4, 12))
        fractions.append(learner.command_fraction)
    assert fractions[-1] > 0.3 and fractions == sorted(fractions)
    assert float(judge.commands.abs().max()) > 0.5  # the judge commands the full ranges from the start
    learner.close()
    judge.close()


def test_a_resumed_run_goes_on_where_the_curricula_stood(tmp_path: Path) -> None:
    """Checkpoints hold the command fraction and terrain levels; --resume restores them (not the start)."""
    from dataclasses import replace

    from unio4.configs.loader import load, resolve_config_path
    from unio4.learning.online.runner import OnlineConfig, train_online

    cfg = load_task_config("go1_rough", ["randomization.enabled=false"])
    train = load(OnlineConfig, resolve_config_path("ppo_go1", "train"), ["ppo.num_steps=4", "save_interval=1"])
    first = Go1VelocityTask(cfg, 4, seed=0, training=True)
    first.command_fraction = 0.8
    first.terrain.levels = torch.tensor([4, 3, 2, 4])
    train_online(first, replace(train, iterations=1), tmp_path, show_progress=False)
    saved = (first.command_fraction, first.terrain.levels.clone())
    first.close()
    second = Go1VelocityTask(cfg, 4, seed=0, training=True)
    assert second.command_fraction == pytest.approx(0.3)
    train_online(second, replace(train, iterations=1), tmp_path, resume=True, show_progress=False)  # restores, trains no more
    assert second.command_fraction == pytest.approx(saved[0])
    assert torch.equal(second.terrain.levels, saved[1])
    second.close()


def recording(step: Callable[[torch.Tensor], Any], sent: list[torch.Tensor]) -> Callable[[torch.Tensor], Any]:
    """A backend ``step`` that keeps the last substep's targets of every call in ``sent``."""

    def step_and_record(targets: torch.Tensor) -> Any:
        sent.append(targets[:, -1].clone())
        return step(targets)

    return step_and_record


def test_the_engine_gets_targets_shaped_as_the_robot_runtime_shapes_them() -> None:
    """Actions that ask for targets far past the joint limits and far from the last target: the engine
    gets the runtime's targets (deploy.safety: inside the limits by the margin, a bounded step per
    policy step); with the shaping off it gets the raw ones, past the limits."""
    from unio4.configs.loader import load, resolve_config_path
    from unio4.deploy.runtime import RuntimeConfig

    deploy = load(RuntimeConfig, resolve_config_path("go1", "deploy")).safety
    for preset in ("go1_flat", "go1_rough"):  # trained as the shipped runtime shapes (no looser)
        shaping = load_task_config(preset).targets
        assert shaping.enabled and shaping.joint_margin_rad >= deploy.joint_margin_rad and shaping.max_rate <= deploy.max_target_rate
    for enabled in (True, False):
        cfg = load_task_config("go1_flat", [*STILL, "randomization.enabled=false", f"targets.enabled={str(enabled).lower()}"])
        task = Go1VelocityTask(cfg, 2, seed=0)
        task.reset()
        sent: list[torch.Tensor] = []
        task.backend.step = recording(task.backend.step, sent)  # type: ignore[method-assign,assignment]
        previous = start = task.last_targets.clone()
        sign = torch.tensor([1.0, -1.0]).view(2, 1)  # one robot pushes every joint up, the other down
        for _ in range(5):
            task.step(sign * cfg.action_clip * torch.ones(2, 12))
        task.close()
        lower, upper, margin = task.joint_lower, task.joint_upper, cfg.targets.joint_margin_rad
        for target in sent:
            inside = bool(((target >= lower + margin - 1e-6) & (target <= upper - margin + 1e-6)).all())
            moved = float((target - previous).abs().max())
            previous = target
            if enabled:
                assert inside and moved <= cfg.targets.max_rate * task.dt + 1e-5
        if enabled:
            expected = torch.minimum(torch.maximum(start + sign * 5 * cfg.targets.max_rate * task.dt, lower + margin), upper - margin)
            assert torch.allclose(sent[-1], expected, atol=1e-5)  # 5 full steps towards the asked target, or the limit
        else:
            assert not inside and moved == 0.0  # raw targets: past the limits, jumping there at once
