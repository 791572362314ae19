"""The robot's MJCF as simple geometry: its bodies, their geoms as primitives, and forward kinematics in numpy.

Reads the MJCF that :func:`unio4.robots.mjcf.build_mjcf` generates (so the picture is the simulated
model, not a second drawing of it): every body below the world with its offset and hinge axis, and
every geom as a box, capsule, cylinder or sphere with its centre and orientation in the body frame
(``fromto`` and ``zaxis`` resolved to a centre and an axis). :meth:`RobotGeometry.body_poses` poses
the bodies from a base pose and joint angles (SDK order): the same numbers as MuJoCo's
``mj_kinematics`` (tests/robots/test_mjcf_geometry.py checks it), without MuJoCo, so the robot side can pose the
legs too. Geoms carry their group and colour (defaults and ``class`` resolved); :attr:`RobotGeometry.drawn`
is what a picture shows: the visual geoms (:data:`~unio4.robots.mjcf.VISUAL_GROUP`), not the collision
shapes. Quaternions are (w, x, y, z). numpy only.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from unio4.robots.description import RobotDescription
from unio4.robots.mjcf import VISUAL_GROUP, build_mjcf

DEFAULT_RGBA = (0.5, 0.5, 0.5, 1.0)  # MuJoCo's geom colour when neither the geom nor its class sets one


@dataclass(frozen=True)
class Body:
    name: str
    parent: int  # index in RobotGeometry.bodies; -1: the world (the floating base)
    pos: np.ndarray  # (3,) offset in the parent's frame
    quat: np.ndarray  # (4,) orientation in the parent's frame
    axis: np.ndarray | None  # (3,) hinge axis in the body frame; None: no hinge (the free base)
    joint: int | None  # SDK index of the hinge's joint angle


@dataclass(frozen=True)
class Geom:
    name: str
    body: int
    kind: str  # box | capsule | cylinder | sphere
    size: np.ndarray  # box: half sizes (3,); capsule/cylinder: (radius, half length); sphere: (radius,)
    pos: np.ndarray  # (3,) centre in the body frame
    quat: np.ndarray  # (4,) orientation in the body frame (capsule/cylinder axis: its z)
    group: int = 0  # MuJoCo geom group: VISUAL_GROUP for what is drawn
    rgba: np.ndarray = field(default_factory=lambda: np.array(DEFAULT_RGBA))  # (4,) colour, 0..1


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (..., 4) (w, x, y, z) quaternions."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        -1,
    )


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v`` (..., 3) rotated by unit quaternions ``q`` (..., 4)."""
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def z_to(vec: np.ndarray) -> np.ndarray:
    """The shortest rotation taking +z to ``vec`` (a capsule's or cylinder's axis; its sign does not change the shape)."""
    v = np.asarray(vec, dtype=np.float64) / np.linalg.norm(vec)
    axis = np.cross([0.0, 0.0, 1.0], v)
    s = np.linalg.norm(axis)
    if s < 1e-10:
        return np.array([1.0, 0.0, 0.0, 0.0]) if v[2] > 0 else np.array([0.0, 1.0, 0.0, 0.0])
    angle = np.arctan2(s, v[2])
    return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis / s])


def _vec(element: Mapping[str, str] | ET.Element, key: str, default: tuple[float, ...]) -> np.ndarray:
    text = element.get(key)
    return np.array([float(x) for x in text.split()] if text else default, dtype=np.float64)


class RobotGeometry:
    """Bodies and geoms of one robot's MJCF, and their poses for given base poses and joint angles."""

    def __init__(self, mjcf: str, joint_names: list[str]) -> None:
        self.bodies: list[Body] = []
        self.geoms: list[Geom] = []
        root = ET.fromstring(mjcf)
        world = root.find("worldbody")
        assert world is not None, "MJCF without a worldbody"
        self._defaults = _geom_defaults(root.find("default"))
        sdk = {name: i for i, name in enumerate(joint_names)}
        for body in world.findall("body"):
            self._add(body, -1, sdk)

    @property
    def drawn(self) -> list[Geom]:
        """The geoms a picture shows: the visual ones (all geoms for an MJCF without visual geoms)."""
        return [g for g in self.geoms if g.group == VISUAL_GROUP] or self.geoms

    @classmethod
    def of(cls, robot: RobotDescription) -> RobotGeometry:
        return cls(build_mjcf(robot), robot.joint_names)

    def _add(self, element: ET.Element, parent: int, sdk: dict[str, int]) -> None:
        hinge = element.find("joint")
        if hinge is not None and hinge.get("type", "hinge") != "hinge":
            raise ValueError(f"body {element.get('name')}: only hinge joints are posed")
        if hinge is not None and np.any(_vec(hinge, "pos", (0, 0, 0))):
            raise ValueError(f"body {element.get('name')}: a hinge off the body origin is not supported")
        index = len(self.bodies)
        self.bodies.append(
            Body(
                name=element.get("name", f"body{index}"),
                parent=parent,
                pos=_vec(element, "pos", (0, 0, 0)),
                quat=_vec(element, "quat", (1, 0, 0, 0)),
                axis=None if hinge is None else _vec(hinge, "axis", (0, 0, 1)),
                joint=None if hinge is None else sdk[hinge.get("name", "")],
            )
        )
        for g in element.findall("geom"):
            attrs = {**self._defaults.get(g.get("class", "main"), {}), **g.attrib}
            self.geoms.append(_geom(attrs, index))
        for child in element.findall("body"):
            self._add(child, index, sdk)

    def body_poses(self, base_pos: np.ndarray, base_quat: np.ndarray, joint_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World positions (T, bodies, 3) and orientations (T, bodies, 4) for T base poses and joint angles (T, joints)."""
        base_pos, base_quat = np.asarray(base_pos, dtype=np.float64), np.asarray(base_quat, dtype=np.float64)
        q = np.asarray(joint_pos, dtype=np.float64)
        base_quat = base_quat / np.linalg.norm(base_quat, axis=-1, keepdims=True)
        T = len(q)
        pos, quat = np.zeros((T, len(self.bodies), 3)), np.zeros((T, len(self.bodies), 4))
        for i, b in enumerate(self.bodies):
            if b.parent < 0:  # the floating base: the given pose
                pos[:, i], quat[:, i] = base_pos, base_quat
                continue
            pq = quat[:, b.parent]
            pos[:, i] = pos[:, b.parent] + quat_rotate(pq, np.broadcast_to(b.pos, (T, 3)))
            quat[:, i] = quat_mul(pq, np.broadcast_to(b.quat, (T, 4)))
            if b.axis is not None and b.joint is not None:
                half = 0.5 * q[:, b.joint]
                axis = b.axis / np.linalg.norm(b.axis)
                quat[:, i] = quat_mul(quat[:, i], np.concatenate([np.cos(half)[:, None], np.sin(half)[:, None] * axis], -1))
        return pos, quat


def _geom_defaults(default: ET.Element | None, inherited: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """The geom attributes of each default class (``main``: the top-level default), nested classes inheriting."""
    if default is None:
        return {}
    own = default.find("geom")
    attrs = {**(inherited or {}), **(own.attrib if own is not None else {})}
    out = {default.get("class", "main"): attrs}
    for child in default.findall("default"):
        out.update(_geom_defaults(child, attrs))
    return out


def _geom(g: Mapping[str, str], body: int) -> Geom:
    """A geom from its attributes (its class's defaults already merged in)."""
    kind = g.get("type", "sphere")
    size = _vec(g, "size", ())
    pos, quat = _vec(g, "pos", (0, 0, 0)), _vec(g, "quat", (1, 0, 0, 0))
    if g.get("zaxis"):
        quat = z_to(_vec(g, "zaxis", ()))
    if g.get("fromto"):
        ends = _vec(g, "fromto", ())
        a, b = ends[:3], ends[3:]
        pos, quat = (a + b) / 2, z_to(b - a)
        size = np.array([size[0], np.linalg.norm(b - a) / 2])
    if kind not in ("box", "capsule", "cylinder", "sphere"):
        raise ValueError(f"geom {g.get('name')}: type {kind!r} has no primitive")
    rgba = _vec(g, "rgba", DEFAULT_RGBA)
    return Geom(g.get("name", kind), body, kind, size, pos, quat, int(g.get("group", "0")), rgba)
