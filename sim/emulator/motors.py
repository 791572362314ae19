"""The Go1 motor driver's reading of a LowCmd: which PD terms act, and the PD law they make."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from unio4.deploy import protocol


class MotorTerms(NamedTuple):
    """Per-motor PD targets, feed-forward torque and gains, zero where the command leaves a term out."""

    q: np.ndarray
    dq: np.ndarray
    tau: np.ndarray
    kp: np.ndarray
    kd: np.ndarray


def motor_terms(cmd: protocol.LowCmd) -> MotorTerms:
    """Servo-mode motors take their terms; the SDK's stop sentinels drop the position or velocity term."""
    servo = cmd.mode == protocol.MODE_SERVO
    hold_q = np.abs(cmd.q) >= protocol.POS_STOP * 0.5
    hold_dq = np.abs(cmd.dq) >= protocol.VEL_STOP * 0.5
    kp = np.where(servo & ~hold_q, cmd.kp, 0.0)
    kd = np.where(servo, cmd.kd, 0.0)
    q = np.where(servo & ~hold_q, cmd.q, 0.0)
    dq = np.where(servo & ~hold_dq, cmd.dq, 0.0)
    tau = np.where(servo, cmd.tau, 0.0)
    return MotorTerms(q, dq, tau, kp, kd)


def pd_torque(
    q: np.ndarray, dq: np.ndarray, tau: np.ndarray, kp: np.ndarray, kd: np.ndarray, joint_pos: np.ndarray, joint_vel: np.ndarray
) -> np.ndarray:
    """The motors' PD law before saturation: ``kp (q - joint_pos) + kd (dq - joint_vel) + tau``."""
    return kp * (q - joint_pos) + kd * (dq - joint_vel) + tau
