"""Robot I/O through the official ``unitree_legged_sdk`` 3.8 (low level, 500 Hz).

:class:`SdkLink` wraps ``robot_interface.UDP``: ``receive`` copies the latest LowState into a
numpy :class:`deploy.protocol.LowState`, ``send`` fills and sends a LowCmd for the 12 motors. Everything above it
(observations, safety, logging) sees only numpy arrays, so the same code runs on the robot's
Jetson, on a laptop on the robot's network and against ``unio4 emulate``.
"""

from __future__ import annotations

import numpy as np

from deploy import protocol

NUM_JOINTS = 12


class SdkLink:
    """Low-level UDP link to a Go1 (or the emulator) through the SDK binary."""

    def __init__(self, host: str, port: int, local_port: int = 0) -> None:
        try:
            from unitree_legged_sdk import robot_interface as sdk
        except ImportError as exc:  # the wheel exists for x86_64 and aarch64, Python 3.8-3.12
            raise ImportError(f"unitree_legged_sdk is not importable here ({exc}); pip install unitree-legged-sdk==3.8.20231105") from None
        self._sdk = sdk
        self.udp = sdk.UDP(protocol.LOW_LEVEL, local_port, host, port)
        self.cmd = sdk.LowCmd()
        self.state = sdk.LowState()
        self.udp.InitCmdData(self.cmd)
        self._motors = [self.cmd.motorCmd[i] for i in range(NUM_JOINTS)]

    def receive(self) -> protocol.LowState:
        """The latest LowState the SDK accepted (a repeated ``tick`` means nothing new arrived)."""
        self.udp.Recv()
        self.udp.GetRecv(self.state)
        s = self.state
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
        """Servo mode on every motor: PD towards ``q`` with gains ``kp``, ``kd`` plus ``tau``."""
        for i, m in enumerate(self._motors):
            m.mode = protocol.MODE_SERVO
            m.q = float(q[i])
            m.dq = 0.0 if dq is None else float(dq[i])
            m.tau = 0.0 if tau is None else float(tau[i])
            m.Kp = kp
            m.Kd = kd
        self.udp.SetSend(self.cmd)
        self.udp.Send()

    def send_damping(self, kd: float) -> None:
        """Damping mode: no position term (Kp 0, the SDK's PosStop), only ``Kd`` on velocity."""
        for m in self._motors:
            m.mode = protocol.MODE_SERVO
            m.q = protocol.POS_STOP
            m.dq = 0.0
            m.tau = 0.0
            m.Kp = 0.0
            m.Kd = kd
        self.udp.SetSend(self.cmd)
        self.udp.Send()
