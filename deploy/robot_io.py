"""Robot I/O through the official ``unitree_legged_sdk`` 3.8 (low level, 500 Hz).

:class:`SdkLink` wraps ``robot_interface.UDP``: ``receive`` copies the latest LowState into a
numpy :class:`unio4.deploy.protocol.LowState`, ``send`` fills and sends a LowCmd for the 12 motors. Everything above it
(observations, safety, logging) sees only numpy arrays, so the same code runs on the robot's
Jetson, on a laptop on the robot's network and against ``unio4 emulate``.

The link is the last line of defence: every servo command is checked against the robot
description's limits (:func:`unio4.deploy.safety.command_fault`) immediately before it is packed, and a
failing one is never sent: damping goes out instead and :class:`UnsafeCommand` is raised. Damping
itself goes out with the description's ``damping_kd`` if the asked one is not a sane gain. There is
no other way to the wire: the SDK objects are private to this class.
"""

from __future__ import annotations

import contextlib
import socket

import numpy as np

from unio4.deploy import protocol
from unio4.deploy.banners import stdout_to_stderr
from unio4.deploy.safety import RobotLimits, command_fault

NUM_JOINTS = 12


class UnsafeCommand(RuntimeError):
    """A command that failed the last check; damping was sent in its place."""


def resolve_host(host: str, port: int) -> str:
    """The IPv4 address of ``host`` (an address or a name), or a one-line ``ValueError``."""
    if not 0 < port < 65536:
        raise ValueError(f"robot address {host}:{port}: the port must be 1-65535")
    try:
        return str(socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0])
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValueError(
            f"cannot resolve robot address {host!r} ({reason}): give the robot's IP (the Go1's is 192.168.123.10) or a known host name"
        ) from None


class SdkLink:
    """Low-level UDP link to a Go1 (or the emulator) through the SDK binary, guarded by ``limits``."""

    def __init__(self, host: str, port: int, limits: RobotLimits, local_port: int = 0) -> None:
        try:
            from unitree_legged_sdk import robot_interface as sdk
        except ImportError as exc:  # the wheel exists for x86_64 and aarch64, Python 3.8-3.12
            raise ImportError(f"unitree_legged_sdk is not importable here ({exc}); pip install unitree-legged-sdk==3.8.20231105") from None
        self.limits = limits
        address = resolve_host(host, port)  # the SDK takes an IPv4 address; a name it cannot read fails later, obscurely
        with stdout_to_stderr():
            self._udp = sdk.UDP(protocol.LOW_LEVEL, local_port, address, port)
        self._cmd = sdk.LowCmd()
        self._state = sdk.LowState()
        self._udp.InitCmdData(self._cmd)
        self._motors = [self._cmd.motorCmd[i] for i in range(NUM_JOINTS)]
        self.sent = 0  # servo commands sent
        self.refused = 0  # servo commands refused by the last check

    def close(self) -> None:
        """Close the SDK's socket now (its goodbye banner goes to stderr too)."""
        if getattr(self, "_udp", None) is not None:
            with stdout_to_stderr():
                self._udp = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def receive(self) -> protocol.LowState:
        """The latest LowState the SDK accepted (a repeated ``tick`` means nothing new arrived)."""
        self._udp.Recv()
        self._udp.GetRecv(self._state)
        s = self._state
        motors = s.motorState
        values = np.array([(m.q, m.dq, m.tauEst, m.mode) for m in motors[:NUM_JOINTS]], dtype=np.float64)
        imu = s.imu
        return protocol.LowState(
            tick=int(s.tick),
            quaternion=np.array(imu.quaternion, dtype=np.float64),
            gyroscope=np.array(imu.gyroscope, dtype=np.float64),
            accelerometer=np.array(imu.accelerometer, dtype=np.float64),
            rpy=np.array(imu.rpy, dtype=np.float64),
            q=values[:, 0],
            dq=values[:, 1],
            tau_est=values[:, 2],
            foot_force=np.array(s.footForce, dtype=np.float64),
            mode=values[:, 3].astype(np.uint8),
            wireless_remote=bytes(s.wirelessRemote),
            temperature=int(imu.temperature),
        )

    def send(self, q: np.ndarray, kp: float, kd: float, dq: np.ndarray | None = None, tau: np.ndarray | None = None) -> None:
        """Servo mode on every motor: PD towards ``q`` with gains ``kp``, ``kd`` plus ``tau``.

        Raises :class:`UnsafeCommand` (after sending damping) if the command fails the last check.
        """
        fault = command_fault(self.limits, q, kp, kd, dq, tau)
        if fault is not None:
            self.refused += 1
            self.send_damping(self.limits.damping_kd)
            raise UnsafeCommand(fault)
        for i, m in enumerate(self._motors):
            m.mode = protocol.MODE_SERVO
            m.q = float(q[i])
            m.dq = 0.0 if dq is None else float(dq[i])
            m.tau = 0.0 if tau is None else float(tau[i])
            m.Kp = kp
            m.Kd = kd
        self._udp.SetSend(self._cmd)
        self._udp.Send()
        self.sent += 1

    def send_damping(self, kd: float) -> None:
        """Damping mode: no position term (Kp 0, the SDK's PosStop), only ``Kd`` on velocity.

        A ``kd`` that is not finite or outside ``(0, max_kd]`` is replaced by the description's ``damping_kd``.
        """
        if not (np.isfinite(kd) and 0.0 < kd <= self.limits.max_kd):
            kd = self.limits.damping_kd
        for m in self._motors:
            m.mode = protocol.MODE_SERVO
            m.q = protocol.POS_STOP
            m.dq = 0.0
            m.tau = 0.0
            m.Kp = 0.0
            m.Kd = kd
        self._udp.SetSend(self._cmd)
        self._udp.Send()
