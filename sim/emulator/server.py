"""The UDP server around one emulated Go1: LowCmds in, physics ticks, LowStates out (see the package docstring)."""

from __future__ import annotations

import collections
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import numpy as np

from unio4.configs.loader import bounded
from unio4.deploy import protocol
from unio4.deploy.rollout_log import npz_bytes, write_atomic
from unio4.deploy.timing import DeadlineClock, set_realtime_priority
from unio4.robots.description import RobotDescription, load_robot
from unio4.sim.emulator.engines import Go1Engine, check_engine, make_engine
from unio4.sim.emulator.faults import FaultConfig, FaultInjector
from unio4.sim.emulator.imu import quat_to_rpy
from unio4.sim.emulator.motors import motor_terms, pd_torque
from unio4.sim.emulator.tracker import EmulatedTracker, TrackerEmulation
from unio4.sim.reality import MotorDrive, RealityConfig


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
    tracker: TrackerEmulation = field(default_factory=TrackerEmulation)  # a tracking camera on the trunk (off by default)


def _bind(host: str, port: int, flag: str = "--port") -> socket.socket:
    """A UDP socket bound to ``host:port``, or an OSError that says what to pass instead."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as exc:  # a name that does not resolve, an address not on this machine, a port in use
        sock.close()
        reason = getattr(exc, "strerror", None) or str(exc)
        raise OSError(
            f"emulator: cannot listen on udp://{host}:{port} ({reason}): --host must be an address of this machine "
            f"(127.0.0.1), {flag} a free UDP port"
        ) from None
    return sock


class Emulator:
    """The UDP server around one simulated robot; see the package docstring."""

    def __init__(self, cfg: EmulatorConfig, robot: RobotDescription | None = None) -> None:
        self.physics = cfg.reality.physics or cfg.physics
        check_engine(self.physics)
        self.cfg = cfg
        self.robot = robot or load_robot("go1")
        self.dt = self.robot.control.sdk_dt
        # The physical robot: the description with the reality profile's body, friction and joint changes.
        self.physical = cfg.reality.apply(self.robot)
        self.sim: Go1Engine = make_engine(self.physics, self.physical, self.dt)
        self.motors = MotorDrive(cfg.reality.motor, self.physical, self.dt) if cfg.reality.motor.explicit else None
        self.sim.reset_lying()
        self.stats = collections.Counter[str]()
        self.faults = FaultInjector(cfg.faults, cfg.reality.sensors, self.dt, cfg.seed, self.stats)
        self.sock = _bind(cfg.host, cfg.port)
        self.port = self.sock.getsockname()[1]
        self.tracker: EmulatedTracker | None = None
        if cfg.tracker.port is not None:
            self.tracker = EmulatedTracker(cfg.tracker, _bind(cfg.host, cfg.tracker.port, "--tracker-port"), self.dt, cfg.seed)
        self.client: tuple[str, int] | None = None
        self.command = self._passive_command()
        self.ticks = 0
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
        self.faults.reset()
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
        m = motor_terms(self.command)
        self.faults.disturb(self.sim, self.ticks - self._reset_tick)
        if self.motors is None:
            self.sim.step(m.q, m.dq, m.tau, m.kp, m.kd)
        else:  # the motor model acts on the PD torque: evaluated here, applied as pure feed-forward
            s = self.sim
            command = pd_torque(m.q, m.dq, m.tau, m.kp, m.kd, s.joint_pos, s.joint_vel)
            zeros = np.zeros_like(command)
            s.step(zeros, zeros, self.motors(command, s.joint_vel), zeros, zeros)
        self.ticks += 1
        s = self.sim
        self._trace.append(
            np.concatenate([[self.time_s], s.base_pos, s.base_quat, s.base_lin_vel_world, s.gyro, [m.kp.mean(), m.kd.mean()]])
        )
        if self.tracker is not None:
            self.tracker.tick(self.ticks, self.time_s, s.base_quat, s.base_lin_vel_world, s.gyro)

    def _state_packet(self) -> bytes:
        s = self.sim
        sensed = self.faults.sense(s, self.run_time_s)
        quat = sensed.quaternion
        state = protocol.LowState(
            tick=self.ticks,
            quaternion=quat,
            gyroscope=sensed.gyroscope,
            accelerometer=s.accelerometer,
            rpy=quat_to_rpy(quat) if np.all(np.isfinite(quat)) else np.full(3, np.nan),
            q=sensed.q,
            dq=sensed.dq,
            tau_est=s.joint_torque,
            foot_force=sensed.foot_force,
            mode=self.command.mode,
            wireless_remote=protocol.encode_remote(sensed.remote),
        )
        return self.faults.corrupt(protocol.encode_low_state(state))

    def _physics_finite(self) -> bool:
        s = self.sim
        values = (s.base_quat, s.gyro, s.accelerometer, s.joint_pos, s.joint_vel, s.joint_torque, s.foot_force)
        return all(np.all(np.isfinite(v)) for v in values)

    def _send_state(self) -> None:
        if self.client is None or self.faults.frozen(self.run_time_s):
            return
        if not self._physics_finite():
            self.stats["nonfinite_states"] += 1
            if self.stats["nonfinite_states"] == 1:
                print(f"emulator: the physics state is not finite at {self.time_s:.3f} s; no more states are sent", file=sys.stderr)
            return
        packet = self.faults.deliver(self._state_packet())
        if packet is None:
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
        if self.tracker is not None:  # printed first: a launcher reads the Go1's line as "started"
            print(f"emulator: tracking camera on udp://{self.cfg.host}:{self.tracker.port} ({self.cfg.tracker.rate_hz:g} Hz)", flush=True)
        print(f"emulator: Go1 on udp://{self.cfg.host}:{self.port} ({mode}, {self.physics}, {1 / self.dt:.0f} Hz, {priority})", flush=True)
        try:
            if self.cfg.lockstep:
                self._serve_lockstep(duration_s)
            else:
                self._serve_realtime(duration_s)
        finally:
            self.sock.close()
            if self.tracker is not None:
                self.tracker.close()
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
