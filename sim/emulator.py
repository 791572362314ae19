"""A simulated Go1 that speaks the low-level UDP protocol of ``unitree_legged_sdk`` 3.8.

``unio4 emulate`` serves LowState datagrams (tick, IMU, motor q/dq/tauEst, foot forces, remote) and
applies the motor commands of each LowCmd with the motors' own PD law,
``tau = Kp (q* - q) + Kd (dq* - dq) + tau_ff`` saturated at the torque limits, in MuJoCo (or PyBullet, the second engine) at the SDK's
500 Hz. The runtime, flashing, sessions and replay run against it exactly as against the robot.

Modes:
- real time: physics ticks at 500 Hz on an absolute-deadline clock, holding the latest command;
  a LowState goes to the client after every tick;
- lockstep: physics advances one tick per received LowCmd and the answer follows at once, so a
  run is deterministic and as fast as the client.

Fault injection (:class:`FaultConfig`): lost and delayed states, corrupt CRCs, sensor noise,
periodic pushes, a fall, the remote's stop combo, a frozen link and a NaN IMU, each from a given
time. The robot starts lying down with its motors passive, as a Go1 in low-level mode does.

Hostile commands: a LowCmd with a valid CRC whose position or velocity target is NaN or infinite
is refused whole (the last good command stays in force) and counted as ``bad_commands``; gains
and torques travel as fixed-point integers and cannot be non-finite. Finite targets far outside a
joint's range are applied as the motor driver would: the PD torque saturates at the torque limit.
The emulator never sends a non-finite state of its own making (only ``--nan-at`` does, on
purpose): a physics state that is not finite is not sent (``nonfinite_states``), so a client sees
a stale link. In real time, it warns on stderr (at most once a second) while it falls behind.
"""

from __future__ import annotations

import collections
import math
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import mujoco
import numpy as np

from unio4.configs.loader import bounded, finite
from unio4.deploy import protocol
from unio4.deploy.observations import rotate_inverse
from unio4.deploy.rollout_log import npz_bytes, write_atomic
from unio4.deploy.timing import DeadlineClock, set_realtime_priority
from unio4.robots.description import RobotDescription, load_robot
from unio4.sim.backends.mujoco_model import ModelIndex, compile_model
from unio4.sim.reality import MotorDrive, RealityConfig, tilt_quat

GRAVITY = 9.81


@dataclass(frozen=True)
class FaultConfig:
    """Faults to inject; times are seconds of emulated time, < 0 means never."""

    state_loss: float = bounded(0.0, ge=0, le=1)  # probability that a LowState is not sent
    delay_ticks: int = bounded(0, ge=0)  # LowStates leave this many ticks late
    bad_crc: float = bounded(0.0, ge=0, le=1)  # probability that a LowState carries a wrong CRC
    noise_std: float = bounded(0.0, ge=0)  # Gaussian noise on q (rad), dq (rad/s x 10) and gyro (rad/s)
    push_interval_s: float = finite(-1.0)
    push_speed: float = bounded(0.0, ge=0)  # m/s, random horizontal direction
    fall_at_s: float = finite(-1.0)  # a roll impulse that topples the robot
    stop_combo_at_s: float = finite(-1.0)  # the remote's L2+B from then on
    freeze_at_s: float = finite(-1.0)  # no more LowStates from then on (a dead link)
    nan_at_s: float = finite(-1.0)  # the IMU reports NaN from then on (a broken sensor)


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = bounded(8007, ge=0, le=65535)
    lockstep: bool = False
    physics: str = "mujoco"
    seed: int = bounded(0, ge=0)
    faults: FaultConfig = field(default_factory=FaultConfig)
    reality: RealityConfig = field(default_factory=RealityConfig)
    # Every new client (a new SDK socket: each `unio4 deploy --local-port 0`) finds the robot as at start:
    # lying, motors passive, noise and pushes reseeded, so two evaluations of one bundle are identical.
    reset_per_run: bool = False
    # SCHED_FIFO priority of the serving loop (0: the default scheduler). The emulator stands in for the
    # robot, whose controller has a computer of its own: host load must not show up as robot faults.
    realtime_priority: int = bounded(50, ge=0, le=99)


class MujocoGo1:
    """One Go1 in MuJoCo at the SDK period, driven by per-motor LowCmd PD terms."""

    def __init__(self, robot: RobotDescription, dt: float) -> None:
        self.robot = robot
        self.model = compile_model(robot)
        self.model.opt.timestep = dt
        self.data = mujoco.MjData(self.model)
        index = ModelIndex.of(self.model, robot)
        self._act, self._qpos, self._qvel, self._foot = index.ctrl, index.qpos, index.qvel, index.foot_sensor
        self._prev_vel = np.zeros(3)
        self.dt = dt

    def reset_lying(self) -> None:
        """The robot on its belly with folded legs, motors passive, settled for 1 s."""
        d = self.data
        mujoco.mj_resetData(self.model, d)
        d.qpos[2] = self.robot.control.lying_height
        d.qpos[3:7] = (1.0, 0.0, 0.0, 0.0)
        d.qpos[self._qpos] = self.robot.lying_joint_pos
        passive = np.zeros(self.robot.num_joints)
        for _ in range(int(1.0 / self.dt)):
            self.step(passive, passive, passive, passive, passive)
        self._prev_vel = d.qvel[0:3].copy()

    def step(self, q: np.ndarray, dq: np.ndarray, tau: np.ndarray, kp: np.ndarray, kd: np.ndarray) -> None:
        """One tick of the motors' PD law: force = kp q* + (tau + kd dq*) - kp q - kd dq."""
        m, d = self.model, self.data
        m.actuator_gainprm[self._act, 0] = kp
        m.actuator_biasprm[self._act, 0] = tau + kd * dq
        m.actuator_biasprm[self._act, 1] = -kp
        m.actuator_biasprm[self._act, 2] = -kd
        d.ctrl[self._act] = q
        self._prev_vel = d.qvel[0:3].copy()
        mujoco.mj_step(m, d)

    # ---- raw state ----
    @property
    def base_pos(self) -> np.ndarray:
        return self.data.qpos[0:3].copy()

    @property
    def base_quat(self) -> np.ndarray:
        return self.data.qpos[3:7].copy()

    @property
    def base_lin_vel_world(self) -> np.ndarray:
        return self.data.qvel[0:3].copy()

    @property
    def gyro(self) -> np.ndarray:
        return self.data.qvel[3:6].copy()  # a free joint's angular velocity is in the body frame

    @property
    def accelerometer(self) -> np.ndarray:
        """Specific force in the body frame, what an IMU measures (+g up when at rest)."""
        return specific_force(self.data.qpos[3:7], self.data.qvel[0:3], self._prev_vel, self.dt)

    @property
    def joint_pos(self) -> np.ndarray:
        return self.data.qpos[self._qpos].copy()

    @property
    def joint_vel(self) -> np.ndarray:
        return self.data.qvel[self._qvel].copy()

    @property
    def joint_torque(self) -> np.ndarray:
        return self.data.actuator_force[self._act].copy()

    @property
    def foot_force(self) -> np.ndarray:
        return self.data.sensordata[self._foot].copy()

    def push(self, delta_vel_world: np.ndarray, delta_ang_vel_body: np.ndarray | None = None) -> None:
        self.data.qvel[0:3] += delta_vel_world
        if delta_ang_vel_body is not None:
            self.data.qvel[3:6] += delta_ang_vel_body


class PybulletGo1:
    """The same Go1 (URDF generated from the same description) in PyBullet: the second engine.

    PyBullet has no built-in PD with feed-forward per motor, so the motors' law is evaluated here
    each tick and applied as joint torques (default velocity motors off); joint damping and
    friction come from the URDF as in MuJoCo.
    """

    def __init__(self, robot: RobotDescription, dt: float) -> None:
        import tempfile

        from unio4.deploy.banners import stdout_to_stderr

        with stdout_to_stderr():  # its build-time banner
            import pybullet as pb

        from unio4.robots.urdf import build_urdf

        self.pb, self.robot, self.dt = pb, robot, dt
        self.client = pb.connect(pb.DIRECT)
        pb.setTimeStep(dt, physicsClientId=self.client)
        pb.setGravity(0, 0, -GRAVITY, physicsClientId=self.client)
        plane = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=self.client)
        self.ground = pb.createMultiBody(0, plane, physicsClientId=self.client)
        pb.changeDynamics(self.ground, -1, lateralFriction=1.0, physicsClientId=self.client)
        with tempfile.NamedTemporaryFile("w", suffix=".urdf") as fh:
            fh.write(build_urdf(robot))
            fh.flush()
            self.body = pb.loadURDF(fh.name, [0, 0, 0.3], flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=self.client)
        index = {
            pb.getJointInfo(self.body, i, physicsClientId=self.client)[12].decode(): i
            for i in range(pb.getNumJoints(self.body, physicsClientId=self.client))
        }
        self._joints = [index[n] for n in robot.joint_short_names]  # link name == child of each joint
        self._feet = [index[f"{leg}_foot"] for leg in robot.legs]
        for foot in self._feet:
            pb.changeDynamics(self.body, foot, lateralFriction=robot.body.foot_friction, physicsClientId=self.client)
        pb.setJointMotorControlArray(
            self.body, self._joints, pb.VELOCITY_CONTROL, forces=[0.0] * len(self._joints), physicsClientId=self.client
        )
        self._tau = np.zeros(robot.num_joints)
        self._read()
        self._prev_vel = self._lin_vel

    def reset_lying(self) -> None:
        pb, c = self.pb, self.client
        pb.resetBasePositionAndOrientation(self.body, [0, 0, self.robot.control.lying_height], [0, 0, 0, 1], physicsClientId=c)
        pb.resetBaseVelocity(self.body, [0, 0, 0], [0, 0, 0], physicsClientId=c)
        for j, q in zip(self._joints, self.robot.lying_joint_pos, strict=True):
            pb.resetJointState(self.body, j, float(q), 0.0, physicsClientId=c)
        self._read()
        passive = np.zeros(self.robot.num_joints)
        for _ in range(int(1.0 / self.dt)):
            self.step(passive, passive, passive, passive, passive)

    def step(self, q: np.ndarray, dq: np.ndarray, tau: np.ndarray, kp: np.ndarray, kd: np.ndarray) -> None:
        torque = kp * (q - self._q) + kd * (dq - self._dq) + tau
        self._tau = np.clip(torque, -self.robot.torque_limits, self.robot.torque_limits)
        self._prev_vel = self._lin_vel
        self.pb.setJointMotorControlArray(
            self.body, self._joints, self.pb.TORQUE_CONTROL, forces=self._tau.tolist(), physicsClientId=self.client
        )
        self.pb.stepSimulation(physicsClientId=self.client)
        self._read()

    def _read(self) -> None:
        """Query the engine once per tick; every property below reads this snapshot."""
        pb, c = self.pb, self.client
        pos, (x, y, z, w) = pb.getBasePositionAndOrientation(self.body, physicsClientId=c)
        lin, ang = pb.getBaseVelocity(self.body, physicsClientId=c)
        joints = pb.getJointStates(self.body, self._joints, physicsClientId=c)
        self._pos, self._quat = np.array(pos), np.array([w, x, y, z])
        self._lin_vel, self._gyro = np.array(lin), rotate_inverse(np, self._quat, np.array(ang))
        self._q, self._dq = np.array([j[0] for j in joints]), np.array([j[1] for j in joints])

    @property
    def base_pos(self) -> np.ndarray:
        return self._pos.copy()

    @property
    def base_quat(self) -> np.ndarray:
        return self._quat.copy()

    @property
    def base_lin_vel_world(self) -> np.ndarray:
        return self._lin_vel.copy()

    @property
    def gyro(self) -> np.ndarray:
        return self._gyro.copy()

    @property
    def accelerometer(self) -> np.ndarray:
        return specific_force(self._quat, self._lin_vel, self._prev_vel, self.dt)

    @property
    def joint_pos(self) -> np.ndarray:
        return self._q.copy()

    @property
    def joint_vel(self) -> np.ndarray:
        return self._dq.copy()

    @property
    def joint_torque(self) -> np.ndarray:
        return self._tau.copy()

    @property
    def foot_force(self) -> np.ndarray:
        contacts = [self.pb.getContactPoints(self.body, self.ground, foot, -1, physicsClientId=self.client) for foot in self._feet]
        return np.array([sum(c[9] for c in points) for points in contacts])

    def push(self, delta_vel_world: np.ndarray, delta_ang_vel_body: np.ndarray | None = None) -> None:
        ang_body = self._gyro + (delta_ang_vel_body if delta_ang_vel_body is not None else 0.0)
        ang_world = rotate(self._quat, ang_body)
        self.pb.resetBaseVelocity(self.body, (self._lin_vel + delta_vel_world).tolist(), ang_world.tolist(), physicsClientId=self.client)
        self._read()


def rotate(quat: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """A body-frame vector in the world frame (the inverse of ``rotate_inverse``)."""
    conjugate = quat * np.array([1.0, -1.0, -1.0, -1.0])
    return rotate_inverse(np, conjugate, vec)


def specific_force(quat: np.ndarray, vel: np.ndarray, prev_vel: np.ndarray, dt: float) -> np.ndarray:
    """What an IMU's accelerometer reads, in the body frame: acceleration minus gravity (+g up at rest)."""
    return rotate_inverse(np, quat, (vel - prev_vel) / dt + np.array([0.0, 0.0, GRAVITY]))


def quat_to_rpy(q: np.ndarray) -> np.ndarray:
    """Roll, pitch, yaw (ZYX) of a (w, x, y, z) quaternion."""
    w, x, y, z = q
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return np.array([roll, pitch, yaw])


class Emulator:
    """The UDP server around one simulated robot; see the module docstring."""

    def __init__(self, cfg: EmulatorConfig, robot: RobotDescription | None = None) -> None:
        engines: dict[str, type[MujocoGo1] | type[PybulletGo1]] = {"mujoco": MujocoGo1, "pybullet": PybulletGo1}
        self.physics = cfg.reality.physics or cfg.physics
        if self.physics not in engines:
            raise ValueError(f"emulator physics {self.physics!r} is not available; choose one of {sorted(engines)}")
        self.cfg = cfg
        self.robot = robot or load_robot("go1")
        self.dt = self.robot.control.sdk_dt
        # The physical robot: the description with the reality profile's body, friction and joint changes.
        self.physical = cfg.reality.apply(self.robot)
        self.sim = engines[self.physics](self.physical, self.dt)
        self.motors = MotorDrive(cfg.reality.motor, self.physical, self.dt) if cfg.reality.motor.explicit else None
        self.sim.reset_lying()
        self.rng = np.random.default_rng(cfg.seed)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((cfg.host, cfg.port))
        except (OSError, OverflowError) as exc:  # a name that does not resolve, an address not on this machine, a port in use
            self.sock.close()
            reason = getattr(exc, "strerror", None) or str(exc)
            raise OSError(
                f"emulator: cannot listen on udp://{cfg.host}:{cfg.port} ({reason}): --host must be an address of this machine "
                "(127.0.0.1), --port a free UDP port"
            ) from None
        self.port = self.sock.getsockname()[1]
        self.client: tuple[str, int] | None = None
        self.command = self._passive_command()
        self.ticks = 0
        self.stats = collections.Counter[str]()
        self._outbox: collections.deque[bytes] = collections.deque()
        self._trace: list[np.ndarray] = []
        self._stop = False
        self._reset_tick = 0  # scheduled faults and pushes count from the last reset

    @property
    def time_s(self) -> float:
        return self.ticks * self.dt

    @property
    def run_time_s(self) -> float:
        """Time since start or the last reset: the clock of scheduled faults."""
        return (self.ticks - self._reset_tick) * self.dt

    def stop(self, *_: object) -> None:
        self._stop = True

    def _passive_command(self) -> protocol.LowCmd:
        """No motor mode, no targets, no gains: what the motors hold before any LowCmd."""
        n = self.robot.num_joints
        return protocol.LowCmd(np.zeros(n, np.uint8), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n))

    def reset(self) -> None:
        """The robot as at start: lying with passive motors, the random streams reseeded, no queued states.

        The tick counter keeps counting (a LowState's tick must keep advancing for a client's freshness check).
        """
        self.command = self._passive_command()
        self.sim.reset_lying()
        if self.motors is not None:
            self.motors.reset()
        self.rng = np.random.default_rng(self.cfg.seed)
        self._outbox.clear()
        self._reset_tick = self.ticks
        self.stats["resets"] += 1

    # ---- one tick ----
    def _apply(self, datagram: bytes, sender: tuple[str, int]) -> bool:
        try:
            cmd = protocol.decode_low_cmd(datagram, self.robot.num_joints)
            servo = cmd.mode == protocol.MODE_SERVO
            for name in ("q", "dq"):
                values = getattr(cmd, name)
                if not np.all(np.isfinite(values[servo])):
                    raise protocol.ProtocolError(f"LowCmd.{name}: non-finite target {values.tolist()}")
        except protocol.ProtocolError as exc:
            self.stats["bad_commands"] += 1
            if self.stats["bad_commands"] <= 3:
                print(f"emulator: ignored a packet from {sender[0]}:{sender[1]}: {exc}", file=sys.stderr)
            return False
        if self.cfg.reset_per_run and sender != self.client:
            self.reset()
        self.client = sender
        self.command = cmd
        self.stats["commands"] += 1
        return True

    def _physics_tick(self) -> None:
        c, f = self.command, self.cfg.faults
        servo = c.mode == protocol.MODE_SERVO
        hold_q = np.abs(c.q) >= protocol.POS_STOP * 0.5
        hold_dq = np.abs(c.dq) >= protocol.VEL_STOP * 0.5
        kp = np.where(servo & ~hold_q, c.kp, 0.0)
        kd = np.where(servo, c.kd, 0.0)
        q = np.where(servo & ~hold_q, c.q, 0.0)
        dq = np.where(servo & ~hold_dq, c.dq, 0.0)
        tau = np.where(servo, c.tau, 0.0)
        t = self.run_time_s
        since = self.ticks - self._reset_tick
        if f.push_interval_s > 0 and since > 0 and since % max(1, round(f.push_interval_s / self.dt)) == 0:
            angle = self.rng.uniform(0, 2 * math.pi)
            self.sim.push(f.push_speed * np.array([math.cos(angle), math.sin(angle), 0.0]))
            self.stats["pushes"] += 1
        if 0 <= f.fall_at_s <= t < f.fall_at_s + self.dt:
            self.sim.push(np.array([0.0, 1.5, 0.5]), np.array([12.0, 0.0, 0.0]))
            self.stats["falls"] += 1
        if self.motors is None:
            self.sim.step(q, dq, tau, kp, kd)
        else:  # the motor model acts on the PD torque: evaluated here, applied as pure feed-forward
            s = self.sim
            command = kp * (q - s.joint_pos) + kd * (dq - s.joint_vel) + tau
            zeros = np.zeros_like(command)
            s.step(zeros, zeros, self.motors(command, s.joint_vel), zeros, zeros)
        self.ticks += 1
        s = self.sim
        self._trace.append(np.concatenate([[self.time_s], s.base_pos, s.base_quat, s.base_lin_vel_world, s.gyro, [kp.mean(), kd.mean()]]))

    def _state_packet(self) -> bytes:
        s, f, t, sensors = self.sim, self.cfg.faults, self.run_time_s, self.cfg.reality.sensors
        q, dq, gyro = s.joint_pos, s.joint_vel, s.gyro
        q_std, dq_std, gyro_std = (
            np.hypot(f.noise_std, sensors.joint_pos_noise),
            np.hypot(10 * f.noise_std, sensors.joint_vel_noise),
            np.hypot(f.noise_std, sensors.gyro_noise),
        )
        if q_std > 0 or dq_std > 0 or gyro_std > 0:
            q = q + self.rng.normal(0, q_std, q.shape)
            dq = dq + self.rng.normal(0, dq_std, dq.shape)
            gyro = gyro + self.rng.normal(0, gyro_std, 3)
        gyro = gyro + np.asarray(sensors.gyro_bias)
        quat = tilt_quat(s.base_quat, *sensors.imu_tilt) if any(sensors.imu_tilt) else s.base_quat
        foot = s.foot_force * sensors.foot_force_scale + sensors.foot_force_offset
        if 0 <= f.nan_at_s <= t:
            quat = np.full(4, np.nan)
        remote = protocol.Remote(frozenset({"L2", "B"})) if 0 <= f.stop_combo_at_s <= t else protocol.Remote()
        packet = protocol.encode_low_state(
            protocol.LowState(
                tick=self.ticks,
                quaternion=quat,
                gyroscope=gyro,
                accelerometer=s.accelerometer,
                rpy=quat_to_rpy(quat) if np.all(np.isfinite(quat)) else np.full(3, np.nan),
                q=q,
                dq=dq,
                tau_est=s.joint_torque,
                foot_force=foot,
                mode=self.command.mode,
                wireless_remote=protocol.encode_remote(remote),
            )
        )
        if f.bad_crc > 0 and self.rng.random() < f.bad_crc:
            packet = packet[:-4] + bytes(4 - i for i in range(4))
            self.stats["bad_crc_sent"] += 1
        return packet

    def _physics_finite(self) -> bool:
        s = self.sim
        values = (s.base_quat, s.gyro, s.accelerometer, s.joint_pos, s.joint_vel, s.joint_torque, s.foot_force)
        return all(np.all(np.isfinite(v)) for v in values)

    def _send_state(self) -> None:
        f = self.cfg.faults
        if self.client is None or (0 <= f.freeze_at_s <= self.run_time_s):
            return
        if not self._physics_finite():
            self.stats["nonfinite_states"] += 1
            if self.stats["nonfinite_states"] == 1:
                print(f"emulator: the physics state is not finite at {self.time_s:.3f} s; no more states are sent", file=sys.stderr)
            return
        self._outbox.append(self._state_packet())
        if len(self._outbox) <= f.delay_ticks + self.cfg.reality.sensors.latency_ticks:
            return
        packet = self._outbox.popleft()
        if f.state_loss > 0 and self.rng.random() < f.state_loss:
            self.stats["states_lost"] += 1
            return
        self.sock.sendto(packet, self.client)
        self.stats["states"] += 1

    # ---- serving ----
    def serve(self, duration_s: float | None = None, trace: Path | None = None) -> None:
        """Serve until ``stop()``, SIGINT/SIGTERM, or ``duration_s`` of emulated time."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._on_signal)
        mode = "lockstep" if self.cfg.lockstep else "real time"
        failure = set_realtime_priority(self.cfg.realtime_priority)
        priority = f"SCHED_FIFO {self.cfg.realtime_priority}" if self.cfg.realtime_priority and not failure else "default scheduler"
        priority += f" (no real-time priority: {failure})" if failure else ""
        print(f"emulator: Go1 on udp://{self.cfg.host}:{self.port} ({mode}, {self.physics}, {1 / self.dt:.0f} Hz, {priority})", flush=True)
        try:
            if self.cfg.lockstep:
                self._serve_lockstep(duration_s)
            else:
                self._serve_realtime(duration_s)
        finally:
            self.sock.close()
            if trace is not None:
                self.save_trace(trace)
            print(
                f"emulator: stopped after {self.time_s:.2f} s; " + ", ".join(f"{k} {v}" for k, v in sorted(self.stats.items())), flush=True
            )

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True

    def _done(self, duration_s: float | None) -> bool:
        return self._stop or (duration_s is not None and self.time_s >= duration_s)

    def _serve_lockstep(self, duration_s: float | None) -> None:
        self.sock.settimeout(0.1)
        while not self._done(duration_s):
            try:
                datagram, sender = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            if self._apply(datagram, sender):
                self._physics_tick()
                self._send_state()

    def _serve_realtime(self, duration_s: float | None) -> None:
        self.sock.setblocking(False)
        clock = DeadlineClock(self.dt)
        warned_at, warned_late = -1.0, 0
        while not self._done(duration_s):
            now = clock.wait()
            if clock.late_ticks > warned_late and now - warned_at >= 1.0:  # at most one line a second
                print(
                    f"emulator: falling behind real time: {clock.late_ticks} late and {clock.missed_ticks} missed 2 ms ticks so far "
                    "(a busy machine; --lockstep does not depend on it)",
                    file=sys.stderr,
                    flush=True,
                )
                warned_at, warned_late = now, clock.late_ticks
            while True:
                try:
                    datagram, sender = self.sock.recvfrom(4096)
                except BlockingIOError:
                    break
                self._apply(datagram, sender)
            self._physics_tick()
            self._send_state()
        self.stats["late_ticks"] = clock.late_ticks

    def save_trace(self, path: Path) -> None:
        """Ground truth per tick as .npz, written atomically: t, base pos, quat, world lin vel, gyro,
        and the mean Kp/Kd the motors were commanded (Kp 0 with Kd > 0 is damping)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        c = np.array(self._trace) if self._trace else np.zeros((0, 16))
        columns = {"t": c[:, 0], "base_pos": c[:, 1:4], "base_quat": c[:, 4:8], "base_lin_vel_world": c[:, 8:11], "gyro": c[:, 11:14]}
        write_atomic(path, npz_bytes({**columns, "kp": c[:, 14], "kd": c[:, 15]}))


def spawn(args: Sequence[str] = ()) -> tuple[subprocess.Popen[str], int]:
    """Start ``unio4 emulate --port 0 ARGS`` and return the process and the UDP port it bound.

    Stop it with SIGINT (it then writes its trace and a closing line of statistics).
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "unio4.cli", "emulate", "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    lines: list[str] = []
    while len(lines) < 10 and (line := proc.stdout.readline()):  # physics engines may print a banner first
        lines.append(line)
        if match := re.search(r"udp://[\d.]+:(\d+)", line):
            return proc, int(match.group(1))
    proc.kill()
    raise RuntimeError(f"the emulator did not start: {''.join(lines).strip()}")
