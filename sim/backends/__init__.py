"""Backend registry: a name on the command line -> a :class:`unio4.sim.backends.interface.PhysicsBackend`.

Engines are imported only when selected, so an optional engine that is not installed costs
nothing until someone asks for it, and then fails with a clear message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports BACKENDS on the robot, where there is no torch
    import torch

    from unio4.robots.description import RobotDescription
    from unio4.sim.backends.interface import PhysicsBackend
    from unio4.sim.config import WarpConfig
    from unio4.sim.terrain import Terrain

BACKENDS = ("mujoco", "mujoco_warp", "pybullet", "isaacgym")


def make_backend(
    name: str,
    robot: RobotDescription,
    num_envs: int,
    terrain: Terrain,
    num_threads: int | None = None,
    warp: WarpConfig | None = None,
    device: torch.device | None = None,
    link_contacts: bool = False,
) -> PhysicsBackend:
    """Instantiate backend ``name`` for ``num_envs`` robots on ``terrain``.

    ``device`` is where the caller keeps its tensors: backends accept inputs from any device; the
    MuJoCo Warp backend also hands its state back there (a GPU task reads GPU simulation memory).
    ``link_contacts``: the state also reports hip and calf ground contacts (``RobotState.link_contact``,
    for evaluation; MuJoCo and PyBullet, the other engines leave it None). It changes no dynamics.
    """
    if name == "mujoco":
        from unio4.sim.backends.mujoco_backend import MujocoBackend

        return MujocoBackend(robot, num_envs, terrain, num_threads=num_threads, link_contacts=link_contacts)
    if name == "mujoco_warp":
        from unio4.sim.backends.mujoco_warp_backend import MujocoWarpBackend
        from unio4.sim.config import WarpConfig

        return MujocoWarpBackend(robot, num_envs, terrain, warp or WarpConfig(), output_device=str(device or "cpu"))
    if name == "pybullet":
        from unio4.sim.backends.pybullet_backend import PybulletBackend

        return PybulletBackend(robot, num_envs, terrain, link_contacts=link_contacts)
    if name == "isaacgym":
        from unio4.sim.backends.isaacgym_backend import IsaacGymBackend

        return IsaacGymBackend(robot, num_envs, terrain)
    raise ValueError(f"unknown backend {name!r} (available: {', '.join(BACKENDS)})")
