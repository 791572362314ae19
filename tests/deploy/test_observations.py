"""One observation implementation: numpy (robot) and torch (sim) give identical vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unio4.deploy.observations import (
    ObservationConfig,
    gait_clock,
    observation_frame,
    projected_gravity,
    push_history,
    rotate_inverse,
    start_history,
)
from unio4.robots.description import RobotDescription


def random_state(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    quat = rng.normal(size=(n, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    return {
        "quat": quat.astype(np.float32),
        "gyro": rng.normal(size=(n, 3)).astype(np.float32),
        "joint_pos": rng.normal(size=(n, 12)).astype(np.float32),
        "joint_vel": rng.normal(scale=5, size=(n, 12)).astype(np.float32),
        "commands": rng.uniform(-1, 1, size=(n, 3)).astype(np.float32),
        "last_action": rng.normal(size=(n, 12)).astype(np.float32),
    }


@pytest.mark.parametrize(("clock", "size"), [(0.0, 45), (2.5, 47)])
def test_numpy_and_torch_observations_are_identical(go1: RobotDescription, clock: float, size: int) -> None:
    cfg = ObservationConfig(clock_frequency=clock)
    rng = np.random.default_rng(0)
    state = random_state(rng, 256)
    state["time_s"] = rng.uniform(0, 20, size=256).astype(np.float32)
    default = go1.default_joint_pos.astype(np.float32)
    obs_np = observation_frame(np, cfg, **state, default_joint_pos=default)
    obs_t = observation_frame(torch, cfg, **{k: torch.from_numpy(v) for k, v in state.items()}, default_joint_pos=torch.from_numpy(default))
    assert obs_np.shape == (256, size) and obs_np.dtype == np.float32
    np.testing.assert_array_equal(obs_np, obs_t.numpy())


def test_gait_clock_is_periodic_and_unique_within_a_cycle() -> None:
    phases = np.linspace(0.0, 1.0, 64, endpoint=False)
    clock = gait_clock(np, phases)
    assert clock[0].tolist() == [1.0, 0.0] and clock[16].tolist() == [0.0, -1.0] and clock[32].tolist() == [-1.0, 0.0]
    np.testing.assert_allclose(gait_clock(np, phases + 3.0), clock, atol=1e-12)
    # Every phase maps to its own point: no two phases of one cycle share a clock reading.
    gaps = np.linalg.norm(clock[:, None] - clock[None], axis=-1) + np.eye(64)
    assert gaps.min() > 0.05
    with pytest.raises(ValueError, match="time_s is required"):
        state = random_state(np.random.default_rng(0), 1)
        observation_frame(np, ObservationConfig(clock_frequency=1.0), **state, default_joint_pos=np.zeros(12))


def test_projected_gravity_known_rotations() -> None:
    upright = np.array([[1.0, 0, 0, 0]])
    assert projected_gravity(np, upright)[0] == pytest.approx([0, 0, -1])
    a = 0.3  # pitch nose-down by a: gravity leans towards +x in the base frame
    pitch = np.array([[math.cos(a / 2), 0, math.sin(a / 2), 0]])
    assert projected_gravity(np, pitch)[0] == pytest.approx([math.sin(a), 0, -math.cos(a)])
    yaw = np.array([[math.cos(0.7), 0, 0, math.sin(0.7)]])
    assert projected_gravity(np, yaw)[0] == pytest.approx([0, 0, -1])
    # rotate_inverse agrees with the closed form for gravity
    q = random_state(np.random.default_rng(1), 8)["quat"].astype(np.float64)
    g = rotate_inverse(np, q, np.tile([0.0, 0.0, -1.0], (8, 1)))
    assert g == pytest.approx(projected_gravity(np, q))


def test_history_keeps_order() -> None:
    history = np.arange(6, dtype=np.float32).reshape(1, 6)  # frames [0 1] [2 3] [4 5]
    out = push_history(np, history, np.array([[6.0, 7.0]], dtype=np.float32))
    assert out.tolist() == [[2, 3, 4, 5, 6, 7]]
    assert ObservationConfig(history_length=3).size(12) == 135


def test_a_fresh_history_is_the_first_frame_repeated_in_numpy_and_torch() -> None:
    """The runtime (one 1-D frame, numpy) and the task (a batch, torch) start a history the same way."""
    frame = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    assert start_history(np, frame, 3).tolist() == [1, 2, 3, 1, 2, 3, 1, 2, 3]  # not 1 1 1 2 2 2 3 3 3
    batch = torch.from_numpy(np.stack([frame, frame * 10]))
    assert start_history(torch, batch, 2).tolist() == [[1, 2, 3, 1, 2, 3], [10, 20, 30, 10, 20, 30]]
