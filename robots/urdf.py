"""Generate the URDF of a robot (PyBullet, Isaac Gym) from the same description as the MJCF.

Legs are written in the order of ``backend_joint_order['pybullet']``, so the URDF's joint indices
differ from the SDK order on purpose: every consumer must go through the explicit index map.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np

from unio4.robots.description import JOINT_PARTS, Capsule, Inertial, RobotDescription, format_numbers


def _inertial(link: ET.Element, inertial: Inertial) -> None:
    node = ET.SubElement(link, "inertial")
    ET.SubElement(node, "origin", xyz=format_numbers(inertial.com), rpy="0 0 0")
    ET.SubElement(node, "mass", value=format_numbers(inertial.mass))
    m = inertial.inertia_matrix()
    ET.SubElement(
        node,
        "inertia",
        ixx=format_numbers(m[0, 0]),
        ixy=format_numbers(m[0, 1]),
        ixz=format_numbers(m[0, 2]),
        iyy=format_numbers(m[1, 1]),
        iyz=format_numbers(m[1, 2]),
        izz=format_numbers(m[2, 2]),
    )


def _collision(link: ET.Element, xyz: object, rpy: object, shape: str, **attrs: str) -> None:
    node = ET.SubElement(link, "collision")
    ET.SubElement(node, "origin", xyz=format_numbers(xyz), rpy=format_numbers(rpy))
    geometry = ET.SubElement(node, "geometry")
    ET.SubElement(geometry, shape, attrs)


def _capsule(link: ET.Element, cap: Capsule) -> None:
    start, end = np.asarray(cap.start), np.asarray(cap.end)
    d = end - start
    length = float(np.linalg.norm(d))
    d = d / length
    rpy = (math.asin(-d[1]), math.atan2(d[0], d[2]), 0.0)
    _collision(link, (start + end) / 2, rpy, "capsule", radius=format_numbers(cap.radius), length=format_numbers(length))


def _joint(robot: ET.Element, name: str, kind: str, parent: str, child: str, xyz: object, axis: str | None = None) -> ET.Element:
    joint = ET.SubElement(robot, "joint", name=name, type=kind)
    ET.SubElement(joint, "origin", xyz=format_numbers(xyz), rpy="0 0 0")
    ET.SubElement(joint, "parent", link=parent)
    ET.SubElement(joint, "child", link=child)
    if axis is not None:
        ET.SubElement(joint, "axis", xyz=axis)
    return joint


def build_urdf(robot: RobotDescription, backend: str = "pybullet") -> str:
    """The robot as URDF, legs in ``backend``'s joint order, primitive collision shapes only."""
    b, j = robot.body, robot.joints
    root = ET.Element("robot", name=robot.name)
    trunk = ET.SubElement(root, "link", name="trunk")
    _inertial(trunk, b.trunk)
    _collision(trunk, (0, 0, 0), (0, 0, 0), "box", size=format_numbers(2 * np.asarray(b.trunk_box_half_size)))
    cyl = b.trunk_cylinder
    for y in (cyl.y, -cyl.y):
        _collision(
            trunk, (0, y, 0), (0, math.pi / 2, 0), "cylinder", radius=format_numbers(cyl.radius), length=format_numbers(2 * cyl.half_length)
        )

    order = robot.backend_joint_order[backend]
    legs = list(dict.fromkeys(name.split("_")[0] for name in order))
    for leg in legs:
        sign = robot.leg_sign(leg)
        parts = {
            "hip": (b.hip[leg], "trunk", b.hip_offsets[leg], "1 0 0"),
            "thigh": (b.thigh_left if sign > 0 else b.thigh_right, f"{leg}_hip", (0.0, sign * b.thigh_offset_y, 0.0), "0 1 0"),
            "calf": (b.calf, f"{leg}_thigh", (0.0, 0.0, -b.thigh_length), "0 1 0"),
        }
        for part in JOINT_PARTS:
            inertial, parent, offset, axis = parts[part]
            link = ET.SubElement(root, "link", name=f"{leg}_{part}")
            _inertial(link, inertial)
            if part == "hip":
                hc = b.hip_cylinder
                _collision(
                    link,
                    (0, 0, 0),
                    (math.pi / 2, 0, 0),
                    "cylinder",
                    radius=format_numbers(hc.radius),
                    length=format_numbers(2 * hc.half_length),
                )
            else:
                _capsule(link, b.thigh_capsule if part == "thigh" else b.calf_capsule)
            joint = _joint(root, f"{leg}_{part}_joint", "revolute", parent, f"{leg}_{part}", offset, axis)
            lo, hi = j.range[part]
            ET.SubElement(
                joint,
                "limit",
                lower=format_numbers(lo),
                upper=format_numbers(hi),
                effort=format_numbers(j.torque_limit[part]),
                velocity=format_numbers(j.velocity_limit[part]),
            )
            ET.SubElement(joint, "dynamics", damping=format_numbers(j.damping[part]), friction=format_numbers(j.frictionloss))
        foot = ET.SubElement(root, "link", name=f"{leg}_foot")
        # A near-massless foot link: the foot's mass is part of the calf in the MJCF too.
        ET.SubElement(ET.SubElement(foot, "inertial"), "mass", value="1e-6")
        foot.find("inertial").append(ET.Element("inertia", ixx="1e-9", ixy="0", ixz="0", iyy="1e-9", iyz="0", izz="1e-9"))  # type: ignore[union-attr]
        _collision(foot, (0, 0, 0), (0, 0, 0), "sphere", radius=format_numbers(b.foot_radius))
        _joint(root, f"{leg}_foot_fixed", "fixed", f"{leg}_calf", f"{leg}_foot", (0.0, 0.0, -b.calf_length))
    ET.indent(root)
    return '<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode")
