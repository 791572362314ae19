"""Pictures of the robot from raw state, with MuJoCo's renderer, whatever engine produced the state.

A pose (base position, orientation, joint angles in SDK order) is written into the qpos of the
robot's MJCF, forward kinematics places the bodies, and an offscreen camera that follows the base
takes the picture: of the floor and the robot's visual geoms (:data:`~unio4.robots.mjcf.VISUAL_GROUP`),
not of its collision shapes or sensor sites. Headless machines need an offscreen OpenGL: the CLI sets ``MUJOCO_GL=egl``
when no display is set (Mesa's EGL renders on the CPU; ``osmesa`` works too).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from unio4.sim.terrain import Terrain


def use_offscreen_gl() -> None:
    """Pick EGL for MuJoCo's renderer when there is no display (call before importing mujoco)."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")


class PoseRenderer:
    """Offscreen images of one robot in given poses."""

    def __init__(
        self, robot_name: str = "go1", width: int = 256, height: int = 192, distance: float = 1.2, terrain: Terrain | None = None
    ) -> None:
        """``terrain``: the ground drawn under the robot (a plane without it, or for flat terrain)."""
        import mujoco

        from unio4.robots.description import load_robot
        from unio4.robots.mjcf import VISUAL_GROUP
        from unio4.sim.backends.mujoco_model import ModelIndex, compile_model

        robot = load_robot(robot_name)
        self._mj = mujoco
        self.model = compile_model(robot, terrain)
        self.model.vis.headlight.ambient[:] = 0.45  # the MJCF's own lights point straight or steeply down
        self.model.vis.headlight.diffuse[:] = 0.7
        self.data = mujoco.MjData(self.model)
        self._qpos_idx = ModelIndex.of(self.model, robot).qpos
        self.renderer = mujoco.Renderer(self.model, height, width)
        # No shadow pass: under these lights it changed under 0.1 % of the pixels and took over half a frame's time.
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        self.camera = mujoco.MjvCamera()
        self.camera.distance, self.camera.azimuth, self.camera.elevation = distance, 135.0, -20.0
        self.scene_option = mujoco.MjvOption()  # what is drawn: the floor (group 0) and the visual geoms, no sites
        self.scene_option.geomgroup[:] = 0
        self.scene_option.geomgroup[[0, VISUAL_GROUP]] = 1
        self.scene_option.sitegroup[:] = 0

    @property
    def qpos_index(self) -> np.ndarray:
        """Where the joint angles (SDK order) sit in ``data.qpos``."""
        return self._qpos_idx

    def render(self, base_pos: np.ndarray, base_quat: np.ndarray, joint_pos: np.ndarray) -> np.ndarray:
        """(height, width, 3) uint8 image of the robot at this pose, the camera on its base."""
        qpos = self.data.qpos
        qpos[0:3], qpos[3:7], qpos[self._qpos_idx] = base_pos, base_quat, joint_pos
        self._mj.mj_kinematics(self.model, self.data)
        self.camera.lookat[:] = base_pos
        self.renderer.update_scene(self.data, camera=self.camera, scene_option=self.scene_option)
        image: np.ndarray = self.renderer.render()
        return image

    def close(self) -> None:
        self.renderer.close()


def write_strip(frames: list[np.ndarray], path: Path, count: int = 6) -> Path:
    """``count`` frames evenly spread over ``frames``, stacked top to bottom, as one PNG."""
    import imageio.v3 as iio

    picks = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    iio.imwrite(path, np.concatenate([frames[i] for i in picks], axis=0))
    return path


def write_animation(frames: list[np.ndarray], path: Path, fps: float) -> Path:
    """All frames as an animated GIF (no video codec needed)."""
    import imageio.v3 as iio

    iio.imwrite(path, np.stack(frames), duration=1000.0 / fps, loop=0)
    return path
