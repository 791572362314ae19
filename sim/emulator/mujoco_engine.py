"""The emulated Go1 in MuJoCo: the training backend's compiled model, its PD actuators set per LowCmd."""

from __future__ import annotations

import mujoco
import numpy as np

from unio4.robots.description import RobotDescription
from unio4.sim.backends.mujoco_model import ModelIndex, compile_model
from unio4.sim.emulator.imu import specific_force


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
        """One tick of the motors' PD law in the MJCF's actuators: force = kp q* + (tau + kd dq*) - kp q - kd dq."""
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
