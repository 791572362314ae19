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
A tracking camera (``--tracker-port``, ``tracker``) streams the trunk's true velocity with a camera's
noise in :mod:`unio4.deploy.tracker`'s protocol, as a bridge beside a real Go1's camera would.

Hostile commands: a LowCmd with a valid CRC whose position or velocity target is NaN or infinite
is refused whole (the last good command stays in force) and counted as ``bad_commands``; gains
and torques travel as fixed-point integers and cannot be non-finite. Finite targets far outside a
joint's range are applied as the motor driver would: the PD torque saturates at the torque limit.
The emulator never sends a non-finite state of its own making (only ``--nan-at`` does, on
purpose): a physics state that is not finite is not sent (``nonfinite_states``), so a client sees
a stale link. In real time, it warns on stderr (at most once a second) while it falls behind.

Modules: ``engines`` (what the server needs of an engine, chosen by name), ``mujoco_engine`` and
``pybullet_engine`` (the adapters, on :mod:`unio4.sim.backends`' compiled MuJoCo model and PyBullet
world), ``motors`` (a LowCmd's PD terms and law), ``imu`` (what the IMU reads), ``faults`` (fault
injection and the sensor model), ``tracker`` (the tracking camera), ``server`` (the UDP loop), ``entry`` (the flags and handler of
``unio4 emulate`` and ``python -m unio4.sim.emulator``) and ``launcher`` (:func:`spawn`, :func:`spawn_with_tracker`).

The names below load on first use: the ``unio4`` parser imports ``entry`` on every start, on the
robot too, where there is no physics engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unio4.sim.emulator.faults import FaultConfig
    from unio4.sim.emulator.imu import quat_to_rpy, specific_force
    from unio4.sim.emulator.launcher import spawn, spawn_with_tracker
    from unio4.sim.emulator.mujoco_engine import MujocoGo1
    from unio4.sim.emulator.pybullet_engine import PybulletGo1
    from unio4.sim.emulator.server import Emulator, EmulatorConfig

_HOMES = {
    "Emulator": "server",
    "EmulatorConfig": "server",
    "FaultConfig": "faults",
    "MujocoGo1": "mujoco_engine",
    "PybulletGo1": "pybullet_engine",
    "quat_to_rpy": "imu",
    "specific_force": "imu",
    "spawn": "launcher",
    "spawn_with_tracker": "launcher",
}
__all__ = ["Emulator", "EmulatorConfig", "FaultConfig", "MujocoGo1", "PybulletGo1", "quat_to_rpy", "specific_force"]
__all__ += ["spawn", "spawn_with_tracker"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
