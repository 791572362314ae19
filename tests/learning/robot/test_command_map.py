"""Command calibration (learning/robot/command_map.py): the fit, its bounds, where it acts and its remap in the actor."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from unio4.deploy.observations import ObservationConfig
from unio4.learning.checkpoint import load_checkpoint, save_checkpoint
from unio4.learning.export import export_onnx
from unio4.learning.policy import GaussianActor, NetworkConfig
from unio4.learning.robot.command_map import CommandMap, CommandMapConfig, Pull, configured_map, fit_command_map, set_remap

COMMANDS = np.array([[0.3, 0, 0], [0.6, 0, 0], [0.9, 0, 0], [0, 0.3, 0], [0, 0, 0.6], [0.5, 0, 0.4]])
FREE = Pull(0.0, 0.0, 0.0)  # no pull: the walks alone decide


def test_the_fit_undoes_an_affine_robot() -> None:
    """A robot that holds G c + g where the nominal one holds c: under the fitted map it holds c again, at any command."""
    gain = np.array([[0.8, 0.0, 0.02], [0.05, 0.9, 0.0], [0.1, 0.0, 0.85]])
    bias = np.array([-0.03, 0.02, 0.05])
    cmap = fit_command_map(COMMANDS, COMMANDS @ gain.T + bias, COMMANDS, FREE)
    unseen = np.array([[0.45, -0.2, 0.3], [0.0, 0.0, -0.5]])
    np.testing.assert_allclose(cmap.apply(unseen) @ gain.T + bias, unseen, atol=1e-9)
    assert cmap.refusal(CommandMapConfig()) == ""
    # the nominal robot: no change
    same = fit_command_map(COMMANDS, COMMANDS, COMMANDS, CommandMapConfig().pull())
    np.testing.assert_allclose(same.matrix, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(same.offset, 0.0, atol=1e-9)


def test_a_linear_map_keeps_a_zero_command_and_mirrors_a_backward_one() -> None:
    """Without the offset (``Pull.offset`` None) the map is linear: standing stays standing, and a robot that is slow
    forward in proportion gets the same gain forward and backward; with it, a walking offset is also a standing one."""
    slow = COMMANDS * np.array([0.8, 1.0, 1.0]) + np.array([0.0, 0.03, 0.0])  # slow, and drifting while it walks
    linear = fit_command_map(COMMANDS, slow, COMMANDS, Pull(0.0, 0.0, None))
    np.testing.assert_allclose(linear.offset, 0.0)
    np.testing.assert_allclose(linear.apply(np.array([[-0.4, 0, 0]])), -linear.apply(np.array([[0.4, 0, 0]])))
    assert linear.matrix[0, 0] == pytest.approx(1.25, abs=0.01)
    affine = fit_command_map(COMMANDS, slow, COMMANDS, FREE)
    assert affine.apply(np.zeros((1, 3)))[0, 1] == pytest.approx(-0.03, abs=1e-9)


def test_the_cross_pull_keeps_a_one_way_drift_from_being_mirrored() -> None:
    """A robot that drifts forward while it turns, either way (0.08 m/s per rad/s of |yaw rate|), walked turning left
    only: unpulled, the fit reads the drift as a cross gain and, turning right, sends a forward command that doubles the
    drift; the default pulls (cross terms toward 0) send less there (0.075 against 0.096) and still cancel most of the
    drift turning left."""

    def robot(c: np.ndarray) -> np.ndarray:
        return c + np.outer(0.08 * np.abs(c[:, 2]), [1.0, 0.0, 0.0])

    left, right = np.array([[0.0, 0.0, 0.6]]), np.array([[0.0, 0.0, -0.6]])
    free = fit_command_map(COMMANDS, robot(COMMANDS), COMMANDS, FREE)
    pulled = fit_command_map(COMMANDS, robot(COMMANDS), COMMANDS, CommandMapConfig().pull())

    def drift(cmap: CommandMap, command: np.ndarray) -> float:
        return float(robot(cmap.apply(command))[0, 0])

    uncalibrated = 0.08 * 0.6
    assert drift(free, right) > 1.8 * uncalibrated  # the mirrored cross term
    assert drift(pulled, right) < drift(free, right) - 0.015
    assert abs(drift(pulled, left)) < 0.2 * uncalibrated


def test_a_map_outside_its_bounds_is_refused_with_the_reason() -> None:
    """A robot that barely turns needs a turn gain far past max_gain_change; a large drift, an offset past max_offset."""
    barely = fit_command_map(COMMANDS, COMMANDS * np.array([1.0, 1.0, 0.3]), COMMANDS, FREE)
    assert "gain changes by 2.33" in barely.refusal(CommandMapConfig())
    drifting = CommandMap(np.eye(3), np.array([0.0, 0.25, 0.0]))
    assert "vy offset +0.250" in drifting.refusal(CommandMapConfig())
    forward_only = fit_command_map(COMMANDS[:3], COMMANDS[:3], COMMANDS[:3], FREE)  # nothing pins sideways or turning
    assert "not finite" in forward_only.refusal(CommandMapConfig())


def test_a_one_sided_map_leaves_the_ways_no_walk_went_and_standing_as_they_were() -> None:
    """Walked forward, to the left and turning left: the map (``one_sided``, the default) acts there as the affine one,
    leaves backwards, to the right, turning right and standing exactly as the start policy had them, and its offset
    ramps in from standing (no jump at a small command); composed with a second map it stays one-sided."""
    cfg = CommandMapConfig()
    gain, bias = np.array([[0.8, 0.0, 0.02], [0.05, 0.9, 0.0], [0.1, 0.0, 0.85]]), np.array([-0.03, 0.02, 0.05])
    robot = COMMANDS @ gain.T + bias
    affine = fit_command_map(COMMANDS, robot, COMMANDS, cfg.pull())
    one_sided = configured_map(COMMANDS, robot, COMMANDS, cfg)
    np.testing.assert_array_equal(one_sided.positive, [1, 1, 1])
    np.testing.assert_array_equal(one_sided.negative, [0, 0, 0])
    walked_way = np.array([[0.45, 0.0, 0.0], [0.2, 0.3, 0.5], [0.0, 0.0, 0.35]])
    np.testing.assert_allclose(one_sided.apply(walked_way), affine.apply(walked_way), atol=1e-12)
    other_way = np.array([[-0.3, 0.0, 0.0], [0.0, -0.25, 0.0], [0.0, 0.0, -0.4], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(one_sided.apply(other_way), other_way)
    slow = np.array([[0.05, 0.0, 0.0]])  # a third of the way up the ramp: a third of the offset
    np.testing.assert_allclose(one_sided.apply(slow) - slow, slow @ (affine.matrix - np.eye(3)).T + affine.offset / 3, atol=1e-12)
    twice = one_sided.after(one_sided)
    np.testing.assert_array_equal(twice.apply(other_way), other_way)
    inside = np.array([[0.6, 0.3, 0.6]])  # exact where the first map's command stays on the walked sides past the ramp
    np.testing.assert_allclose(twice.apply(inside), one_sided.apply(one_sided.apply(inside)), atol=1e-12)
    everywhere = configured_map(COMMANDS, robot, COMMANDS, replace(cfg, one_sided=False))
    np.testing.assert_allclose(everywhere.apply(other_way), affine.apply(other_way), atol=1e-12)


@pytest.mark.parametrize("history", [1, 3])
def test_the_remapped_actor_acts_at_c_as_the_old_one_at_the_remapped_c(history: int, tmp_path: Path) -> None:
    """Set in the actor, the map changes nothing but the command the actor sees: with normalisation, command scales and
    a history of frames, the new actor at c gives the old one's action at the remapped c, on both sides of the walked
    ones; the remap survives a checkpoint, an actor without one stores no keys for it, and ONNX runs it as torch does."""
    obs_cfg = ObservationConfig(history_length=history)
    joints = 12
    size = obs_cfg.size(joints)
    actor = GaussianActor(size, joints, 1.0, NetworkConfig(actor_hidden=(32, 32)))
    torch.manual_seed(0)
    actor.normalizer.set_statistics(torch.randn(size) * 0.3, torch.rand(size) + 0.5)
    plain_keys = set(actor.state_dict())
    cmap = replace(
        CommandMap(np.array([[1.2, 0.0, 0.1], [0.05, 0.9, 0.0], [0.0, 0.1, 1.1]]), np.array([-0.05, 0.03, 0.1])),
        **CommandMapConfig().sides(COMMANDS),
    )
    obs, commands = torch.randn(64, size), torch.rand(64, 3) - 0.5
    frame, span = obs_cfg.frame_size(joints), obs_cfg.layout(joints).span("commands")
    scale = torch.tensor(obs_cfg.command_scale)
    remapped = torch.from_numpy(cmap.apply(commands.double().numpy())).float()
    before, after = obs.clone(), obs.clone()
    for k in range(history):
        cols = slice(k * frame + span.start, k * frame + span.stop)
        before[:, cols], after[:, cols] = remapped * scale, commands * scale
    expected = actor(before)[0]
    state = actor.state_dict()
    set_remap(state, cmap, obs_cfg, joints)
    save_checkpoint(tmp_path / "ckpt.pt", {"actor": state})
    fresh = GaussianActor(size, joints, 1.0, NetworkConfig(actor_hidden=(32, 32)))
    fresh.load_state_dict(load_checkpoint(tmp_path / "ckpt.pt")["actor"])
    torch.testing.assert_close(fresh(after)[0], expected, atol=1e-5, rtol=1e-4)
    assert (
        plain_keys < set(state) and set(GaussianActor(size, joints, 1.0, NetworkConfig(actor_hidden=(32, 32))).state_dict()) == plain_keys
    )
    export_onnx(fresh.eval(), tmp_path / "policy.onnx")
    session = ort.InferenceSession(str(tmp_path / "policy.onnx"))
    np.testing.assert_allclose(session.run(None, {"obs": after.numpy()})[0], expected.detach().numpy(), atol=1e-5, rtol=1e-4)


def test_a_malformed_remap_in_a_checkpoint_is_refused_naming_it() -> None:
    """A checkpoint is a file from elsewhere: a remap with a non-finite gain, or one that does not fit the observation,
    does not load (a one-line error naming the buffer), and a part of one is missing keys."""
    obs_cfg, joints = ObservationConfig(), 12
    size = obs_cfg.size(joints)
    actor = GaussianActor(size, joints, 1.0, NetworkConfig(actor_hidden=(32, 32)))
    good = actor.state_dict()
    set_remap(good, CommandMap(np.eye(3), np.zeros(3)), obs_cfg, joints)
    for key, value, expected in (
        ("command_remap.matrix", torch.full((3, 3), float("nan")), "matrix: expected a finite float tensor"),
        ("command_remap.embed", torch.zeros(3, size + 1), f"embed: expected shape (3 x frames, {size})"),
        ("command_remap.positive", torch.full((3,), 0.5), "positive/negative: expected 0 or 1"),
    ):
        with pytest.raises(RuntimeError, match=re.escape(expected)):
            actor.load_state_dict({**good, key: value})
    partial = {k: v for k, v in good.items() if k != "command_remap.ramp"}
    with pytest.raises(RuntimeError, match=re.escape("command_remap.ramp")):
        actor.load_state_dict(partial)
