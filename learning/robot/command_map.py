"""Command calibration: the robot walks as the bundle walked in simulation, by remapping the commands it is given.

A robot that differs from the simulator (a weaker motor, a payload off centre, a tilted IMU) mostly holds a
different velocity at each command than the bundle holds on the nominal robot: slower forward, a sideways drift
while walking, a turn rate off by a few per cent. Much of that difference is affine in the command. So after a
session's walks (mean action, at the check's forward, sideways and turning commands) the behaviour the robot
held is fitted as ``B(c) = G c + g`` and the same bundle's behaviour on the nominal robot in simulation as
``R(c) = G0 c + g0``; the command that makes the robot hold ``R(c)`` is then

    c' = A c + d,   A = G^-1 G0,   d = G^-1 (g0 - g).

The walks go one way along each axis (forward, to the left, turning left), and what a robot does the other way,
or standing, they do not show. So by default the map acts only on the sides of each axis the walks went, its
offset ramping in from standing (:mod:`unio4.learning.command_remap`): at a command no walk points toward the
calibrated policy acts as the start policy did. The remap is set in the actor (buffers exported with it), so the
calibrated policy is a checkpoint and bundle like any other, and the deploy runtime is unchanged. A map whose
gains or offsets leave the declared bounds is refused: the walks then say something a command map should not fix
(docs/benchmarks/go1-sessions.md, "Command calibration" and "A calibration only where the walks went").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unio4.configs.loader import bounded, check_fields
from unio4.deploy.observations import ObservationConfig
from unio4.learning.checkpoint import load_checkpoint
from unio4.learning.command_remap import BUFFERS, TERMS, remap_change
from unio4.learning.export import checkpoint_task, init_checkpoint
from unio4.learning.robot.identify import Candidate, IdentifyConfig, all_tracked, simulate_held, steady_motions
from unio4.robots.description import load_robot
from unio4.sim.config import TaskConfig


@dataclass(frozen=True)
class CommandMapConfig:
    """Whether and how identify mode calibrates its candidate's commands (``session.calibrate``)."""

    enabled: bool = False
    # Pulls of the affine fits toward "behaviour = command" (G = I, g = 0), relative to the walks' own weight, one per kind
    # of term: they keep a fit from six walks sane where one walk alone decides a term, and define it where no walk does.
    # Less pull closes more at the walked commands and less away from them (docs/benchmarks/go1-sessions.md, "A
    # calibration replayed" and "Cross terms and offsets pulled harder"). ridge: an axis's own gain toward 1.
    ridge: float = bounded(0.002, ge=0, le=10)
    # An axis's response to another axis's command toward 0: the walks turn and step sideways one way only, so a cross
    # term read from them (a forward drift while turning left) is mirrored, wrongly, for the other way
    cross_ridge: float = bounded(0.02, ge=0, le=10)
    offset_ridge: float = bounded(0.05, ge=0, le=10)  # the intercept toward 0: what a zero command is sent
    # False: the fits have no intercept, so the map is linear (a zero command stays zero, a backward one mirrors a
    # forward one); True: affine, which also cancels an offset the robot holds while walking, and sends it at standstill
    offset: bool = True
    # True: the map acts only on the sides of each axis the walks reached (|command| >= ramp), its offset growing from 0
    # at standing to full at ramp (vx m/s, vy m/s, yaw rate rad/s); elsewhere the policy is left as it was. False: the
    # affine map everywhere (a robot's other way and standing get what its walks one way say)
    one_sided: bool = True
    ramp: tuple[float, float, float] = bounded((0.15, 0.15, 0.3), gt=0, le=2)
    max_gain_change: float = bounded(0.5, gt=0, le=2)  # largest |A - I| entry allowed
    # largest |d| allowed: (vx m/s, vy m/s, yaw rate rad/s); the offset is what the robot is sent at a zero command
    max_offset: tuple[float, float, float] = bounded((0.15, 0.15, 0.3), ge=0, le=2)

    def __post_init__(self) -> None:
        check_fields(self)

    def pull(self) -> Pull:
        """The fits' pulls as :func:`affine_fit` takes them."""
        return Pull(self.ridge, self.cross_ridge, self.offset_ridge if self.offset else None)

    def sides(self, commands: np.ndarray) -> dict[str, np.ndarray]:
        """Where a map fitted to walks at ``commands`` (n, 3) acts (:class:`CommandMap`'s ``positive``, ``negative``
        and ``ramp``): one-sided, the sides of each axis some walk reached past ``ramp``; else everywhere.
        """
        if not self.one_sided:
            return {"positive": np.ones(3), "negative": np.ones(3), "ramp": np.zeros(3)}
        ramp = np.array(self.ramp)
        reached = lambda sign: (sign * commands >= ramp).any(axis=0).astype(float)  # noqa: E731
        return {"positive": reached(1.0), "negative": reached(-1.0), "ramp": ramp}


@dataclass(frozen=True)
class Pull:
    """How hard :func:`affine_fit` pulls each kind of term toward "behaviour = command", per walk."""

    gain: float  # an axis's own gain, toward 1
    cross: float  # an axis's gain on another axis's command, toward 0
    offset: float | None  # the intercept, toward 0 (None: no intercept, a linear fit)


@dataclass(frozen=True)
class CommandMap:
    """``c' = matrix @ c + offset`` over commands (vx, vy, yaw rate) on the sides of each axis where ``positive`` /
    ``negative`` are 1, the offset ramping in over ``ramp`` (0: everywhere); elsewhere ``c' = c``
    (:mod:`unio4.learning.command_remap`). The defaults: the affine map everywhere.
    """

    matrix: np.ndarray  # (3, 3)
    offset: np.ndarray  # (3,)
    positive: np.ndarray = field(default_factory=lambda: np.ones(3))
    negative: np.ndarray = field(default_factory=lambda: np.ones(3))
    ramp: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def buffers(self) -> dict[str, torch.Tensor]:
        """The map's terms as :class:`~unio4.learning.command_remap.CommandRemap` holds them (float64)."""
        return {name: torch.as_tensor(np.asarray(getattr(self, name), dtype=float)) for name in TERMS}

    def apply(self, commands: np.ndarray) -> np.ndarray:
        """The remapped commands (..., 3)."""
        c = torch.as_tensor(np.asarray(commands, dtype=float))
        return (c + remap_change(c, self.buffers())).numpy()

    def after(self, inner: CommandMap) -> CommandMap:
        """This map applied to what ``inner`` gives: a second calibration on top of a first. Exact where both act
        affinely (the walked sides, past the ramp); the sides where both act.
        """
        matrix, offset = self.matrix @ inner.matrix, self.matrix @ inner.offset + self.offset
        sides = {"positive": self.positive * inner.positive, "negative": self.negative * inner.negative}
        return CommandMap(matrix, offset, **sides, ramp=np.maximum(self.ramp, inner.ramp))

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> CommandMap:
        """The map a ``calibrate.yaml`` records (one recorded before maps were one-sided: affine everywhere)."""
        return cls(**{k: np.array(record[k], dtype=float) for k in TERMS if k in record})

    def refusal(self, cfg: CommandMapConfig) -> str:
        """Why the map must not be used ('' when it may)."""
        if not (np.all(np.isfinite(self.matrix)) and np.all(np.isfinite(self.offset))):
            return "the fit is not finite (the walks do not determine it)"
        change = float(np.abs(self.matrix - np.eye(3)).max())
        if change > cfg.max_gain_change:
            return f"a gain changes by {change:.2f} (max_gain_change {cfg.max_gain_change:g})"
        for name, value, limit in zip(("vx", "vy", "yaw rate"), self.offset, cfg.max_offset, strict=True):
            if abs(value) > limit:
                return f"the {name} offset {value:+.3f} exceeds max_offset {limit:g}"
        return ""

    def record(self) -> dict[str, Any]:
        """The map as plain data."""
        return {name: np.asarray(value).round(5).tolist() for name, value in self.buffers().items()}


def affine_fit(commands: np.ndarray, held: np.ndarray, pull: Pull) -> tuple[np.ndarray, np.ndarray]:
    """``held ~ G @ c + g`` by least squares over the walks (n, 3), each term pulled toward G = I, g = 0 by its
    ``pull`` x n (one output axis at a time: which gain is the axis's own differs per axis).
    """
    n, linear = len(commands), pull.offset is None
    x = np.concatenate([commands, np.ones((n, 1))], axis=1)[:, : 3 if linear else 4]  # (n, 3 or 4)
    gain, bias = np.zeros((3, 3)), np.zeros(3)
    for axis in range(3):
        prior = np.eye(4)[axis, : x.shape[1]]  # behaviour = command: own gain 1, the rest 0
        weights = [pull.gain if i == axis else pull.cross for i in range(3)] + ([] if linear else [pull.offset])
        weight = n * np.diag(np.array(weights, dtype=float))
        theta = np.linalg.solve(x.T @ x + weight, x.T @ held[:, axis] + weight @ prior)
        gain[axis], bias[axis] = theta[:3], 0.0 if linear else theta[3]
    return gain, bias


def fit_command_map(commands: np.ndarray, robot: np.ndarray, target: np.ndarray, pull: Pull) -> CommandMap:
    """The map under which a robot that held ``robot`` at ``commands`` holds ``target`` (all (n, 3)); a ``pull``
    without offset gives a linear map (both fits without intercept).
    """
    try:  # singular: the walks do not determine the fit (no pull and too few distinct commands) or the robot ignores one
        gain, bias = affine_fit(commands, robot, pull)
        gain0, bias0 = affine_fit(commands, target, pull)
        inverse = np.linalg.inv(gain)
    except np.linalg.LinAlgError:
        return CommandMap(np.full((3, 3), np.nan), np.full(3, np.nan))
    return CommandMap(inverse @ gain0, inverse @ (bias0 - bias))


def configured_map(commands: np.ndarray, robot: np.ndarray, target: np.ndarray, cfg: CommandMapConfig) -> CommandMap:
    """:func:`fit_command_map` with ``cfg``'s pulls, acting where ``cfg`` says (one-sided: the sides walked)."""
    return replace(fit_command_map(commands, robot, target, cfg.pull()), **cfg.sides(commands))


def command_columns(obs: ObservationConfig, num_joints: int) -> list[np.ndarray]:
    """The observation indices of the command, one (3,) array per history frame."""
    span, frame = obs.layout(num_joints).span("commands"), obs.frame_size(num_joints)
    return [np.arange(span.start, span.stop) + k * frame for k in range(obs.history_length)]


REMAP = "command_remap."  # the remap's keys in an actor's state dict


def actor_remap(actor: dict[str, torch.Tensor]) -> CommandMap | None:
    """The command remap an actor's state dict holds (None: none)."""
    if REMAP + "matrix" not in actor or actor[REMAP + "embed"].numel() == 0:
        return None
    return CommandMap(**{name: actor[REMAP + name].double().numpy() for name in TERMS})


def set_remap(actor: dict[str, torch.Tensor], cmap: CommandMap, obs: ObservationConfig, num_joints: int) -> None:
    """Make the actor (its state dict, changed in place) act at command ``c`` as it acted at ``cmap.apply(c)``: on
    top of a remap it already has, which then applies to ``cmap``'s commands.
    """
    held = actor_remap(actor)
    cmap = held.after(cmap) if held is not None else cmap
    columns = command_columns(obs, num_joints)
    embed = torch.zeros(3 * len(columns), obs.size(num_joints))
    for k, cols in enumerate(columns):
        embed[3 * k + np.arange(3), torch.from_numpy(cols)] = 1.0
    terms = {**cmap.buffers(), "embed": embed, "scale": torch.tensor(obs.command_scale)}
    actor.update({REMAP + name: terms[name].float() for name in BUFFERS})


NOMINAL: Candidate = (1.0, 0.0, 0.0, 1.0)  # the description's robot: full strength, no payload, no latency


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` fitted: the map (or why none), and the walks it was fitted to."""

    cmap: CommandMap
    refused: str  # '' when the map was set in the actor
    read: str  # what read the robot's speeds: "tracking camera" or "leg odometry"
    commands: np.ndarray  # (n, 3) the walks' commands
    robot: np.ndarray  # (n, 3) what the robot held (predicted for a fine-tuned policy: see calibrate)
    target: np.ndarray  # (n, 3) what the start bundle holds on the nominal robot in simulation

    def record(self) -> dict[str, Any]:
        """Plain data for ``calibrate.yaml``."""
        rows = [
            {"command": c.round(4).tolist(), "robot": r.round(4).tolist(), "target": t.round(4).tolist()}
            for c, r, t in zip(self.commands, self.robot, self.target, strict=True)
        ]
        return {**self.cmap.record(), "applied": not self.refused, "refused": self.refused, "read": self.read, "walks": rows}


def robot_held(runs: list[Path], task: TaskConfig, skip_s: float, min_tracked: float) -> tuple[np.ndarray, np.ndarray, str]:
    """The walks' commands and what the robot held over their steady parts (n, 3): by the tracking camera where it
    read every walk, else by leg odometry; and which. Walks that stopped before their steady part are left out.
    """
    helds = steady_motions(runs, task, skip_s, min_tracked)
    camera = all_tracked(helds)
    means = [(h.tracked if camera and h.tracked is not None else h.odometry).mean(axis=0) for h in helds]
    commands = np.array([h.command for h in helds]).reshape(-1, 3)
    return commands, np.array(means).reshape(-1, 3), "tracking camera" if camera else "leg odometry"


def calibrate(
    policy: Path,
    walked: Path,
    start: Path,
    runs: list[Path],
    task: TaskConfig,
    fit: Candidate,
    cfg: CommandMapConfig,
    walks: IdentifyConfig,
    seconds: float,
) -> tuple[dict[str, Any], Calibration]:
    """The checkpoint of bundle ``policy`` (its state) with its commands calibrated to the robot that walked bundle
    ``walked`` in ``runs``.

    The target is what the session's ``start`` bundle holds on the nominal robot in simulation. When ``policy`` is not
    ``walked`` (a fine-tune of it), the robot's behaviour under it is predicted: the walks plus the change
    the fine-tune makes on the identified robot ``fit`` in simulation. ``walks``: how the walks are read (their
    ``skip_s`` and ``min_tracked``); ``seconds``: a walk's policy time. A refused map leaves the state as it was.
    """
    skip = walks.skip_s
    commands, held, read = robot_held(runs, task, skip, walks.min_tracked)
    key = "true" if read == "tracking camera" else "odometry"  # compare like with like
    target = simulate_held(start, task, commands, NOMINAL, seconds, skip)[key]
    state = load_checkpoint(init_checkpoint(policy))
    if Path(policy).resolve() != Path(walked).resolve():
        base, tuned = (simulate_held(b, task, commands, fit, seconds, skip)[key] for b in (walked, policy))
        held = held + tuned - base
    cmap = configured_map(commands, held, target, cfg)
    refused = cmap.refusal(cfg) if len(commands) >= 2 else f"{len(commands)} walks reached their steady part (2 needed)"
    if not refused:
        own = checkpoint_task(state, str(policy)) or task
        joints = load_robot(own.robot).num_joints
        set_remap(state["actor"], cmap, own.observations, joints)
    return state, Calibration(cmap, refused, read, commands, held, target)
