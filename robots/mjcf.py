"""Generate the MJCF of a robot from its :class:`~unio4.robots.description.RobotDescription`.

Actuators implement the explicit PD law ``tau = clip(Kp (q* - q) - Kd dq, -tau_max, tau_max)``
on every physics substep as MuJoCo ``general`` actuators (gain Kp on the target, affine bias
``-Kp q - Kd dq``, force range = torque limit): ``ctrl`` is the joint target q*. This replaces
Menagerie's kp=100 position servos with the configured gains, and per-env Kp/Kd/motor-strength
randomisation is a write to ``actuator_gainprm``/``biasprm``.

What a renderer draws is visual-only geometry generated from the description's ``visual:`` block
(class ``visual``: no contacts, no mass, :data:`VISUAL_GROUP`): a Go1-sized trunk, motor housings,
thighs that reach the knees, calves and feet. The collision shapes the physics uses and the sensor
sites sit in :data:`HIDDEN_GROUP`, which MuJoCo's renderer and viewer hide by default. Every body's
inertia is explicit (``inertiafromgeom="false"``), so geoms never change it, and the visual geoms of
a body come after its collision geoms: the dynamics are those of the model without them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from unio4.robots.description import JOINT_PARTS, Capsule, Inertial, RobotDescription, format_numbers

VISUAL_GROUP = 2  # the geoms renderers draw (MuJoCo shows groups 0-2 by default)
HIDDEN_GROUP = 3  # collision geoms and sensor sites: hidden by default


@dataclass(frozen=True)
class HeightfieldSpec:
    """A heightfield floor: ``nrow x ncol`` samples over ``[-size_x, size_x] x [-size_y, size_y]``."""

    nrow: int
    ncol: int
    size_x: float
    size_y: float
    max_height: float
    solimp: tuple[float, float, float]  # contact impedance, over the feet's own (priority 2): TerrainConfig.contact_solimp
    base_depth: float = 0.5
    outside_drop: float = 0.02  # m: beyond the edges a plane this far below zero, so a robot that walks off steps down instead of falling


def _inertial(parent: ET.Element, inertial: Inertial) -> None:
    ET.SubElement(
        parent,
        "inertial",
        pos=format_numbers(inertial.com),
        mass=format_numbers(inertial.mass),
        diaginertia=format_numbers(inertial.inertia),
        quat=format_numbers(inertial.quat),
    )


def _capsule(parent: ET.Element, name: str, cap: Capsule) -> None:
    ET.SubElement(parent, "geom", name=name, type="capsule", size=format_numbers(cap.radius), fromto=format_numbers(cap.start + cap.end))


def build_mjcf(robot: RobotDescription, heightfield: HeightfieldSpec | None = None, link_contacts: bool = False) -> str:
    """The robot on a plane (or heightfield) floor, with PD actuators and contact sensors.

    ``link_contacts`` adds contact sensors on the hips and calves too (:func:`_add_link_contacts`):
    sensors only, so the dynamics are the same with or without them.
    """
    root = ET.Element("mujoco", model=robot.name)
    _add_options(root, robot)
    world = _add_scene(root, heightfield)
    trunk = _add_trunk(world, robot)
    for leg in robot.legs:
        _add_leg(trunk, robot, leg)
    _add_actuators(root, robot)
    _add_sensors(root, robot)
    if link_contacts:
        _add_link_contacts(root, robot)
    _add_home_keyframe(root, robot)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def _add_options(root: ET.Element, robot: RobotDescription) -> None:
    """Compiler and solver options and the joint and geom defaults every body inherits."""
    b, j, c = robot.body, robot.joints, robot.control
    ET.SubElement(root, "compiler", angle="radian", autolimits="true", inertiafromgeom="false")
    ET.SubElement(root, "option", timestep=format_numbers(c.sim_dt), integrator="implicitfast", cone="elliptic", impratio="100")
    default = ET.SubElement(root, "default")
    ET.SubElement(default, "joint", armature=format_numbers(j.armature), frictionloss=format_numbers(j.frictionloss))
    # Robot geoms collide with the floor only (contype 1 vs conaffinity 1 of the floor).
    geom = {"contype": "1", "conaffinity": "0", "friction": format_numbers(b.geom_friction), "condim": "3", "group": str(HIDDEN_GROUP)}
    ET.SubElement(default, "geom", geom)
    ET.SubElement(default, "site", group=str(HIDDEN_GROUP))
    visual = ET.SubElement(default, "default", {"class": "visual"})  # drawn only: no contact, no mass
    ET.SubElement(visual, "geom", contype="0", conaffinity="0", mass="0", group=str(VISUAL_GROUP), material="visual")


def _add_scene(root: ET.Element, heightfield: HeightfieldSpec | None) -> ET.Element:
    """The assets, light and floor (a plane, or the heightfield); the worldbody the robot goes into."""
    asset = ET.SubElement(root, "asset")
    ET.SubElement(asset, "texture", name="grid", type="2d", builtin="checker", rgb1=".2 .3 .4", rgb2=".1 .2 .3", width="256", height="256")
    ET.SubElement(asset, "material", name="grid", texture="grid", texrepeat="8 8", reflectance="0.1")
    ET.SubElement(asset, "material", name="visual", specular="0.15", shininess="0.3")  # matte; each geom's rgba colours it
    world = ET.SubElement(root, "worldbody")
    ET.SubElement(world, "light", pos="0 0 3", dir="0 0 -1", directional="true")
    floor = {"name": "floor", "material": "grid", "contype": "1", "conaffinity": "1", "condim": "3", "group": "0"}  # group 0: drawn
    if heightfield is None:
        ET.SubElement(world, "geom", floor, type="plane", size="0 0 0.05")
    else:
        h = heightfield
        ET.SubElement(
            asset,
            "hfield",
            name="terrain",
            nrow=str(h.nrow),
            ncol=str(h.ncol),
            size=format_numbers((h.size_x, h.size_y, h.max_height, h.base_depth)),
        )
        # drawn in one matte colour under a slanted light, so that slopes and step edges show
        ET.SubElement(asset, "material", name="terrain", rgba=".55 .52 .48 1", specular="0.05")
        ET.SubElement(world, "light", pos="0 0 3", dir="0.4 0.3 -1", directional="true", diffuse=".4 .4 .4")
        terrain = {**floor, "material": "terrain"}
        ET.SubElement(world, "geom", terrain, type="hfield", hfield="terrain", priority="2", solimp=format_numbers(h.solimp))
        outside = {**floor, "name": "floor_outside", "pos": format_numbers((0.0, 0.0, -h.outside_drop)), "group": str(HIDDEN_GROUP)}
        ET.SubElement(world, "geom", outside, type="plane", size="0 0 0.05")
    return world


def _add_trunk(world: ET.Element, robot: RobotDescription) -> ET.Element:
    """The free-floating trunk with its box and side cylinders, its visual box, the IMU site and the trunk contact site."""
    b = robot.body
    trunk = ET.SubElement(world, "body", name="trunk", pos=format_numbers((0.0, 0.0, robot.control.spawn_height)))
    ET.SubElement(trunk, "freejoint", name="root")
    _inertial(trunk, b.trunk)
    ET.SubElement(trunk, "geom", name="trunk_box", type="box", size=format_numbers(b.trunk_box_half_size))
    cyl = b.trunk_cylinder
    for side, y in (("left", cyl.y), ("right", -cyl.y)):
        ET.SubElement(
            trunk,
            "geom",
            name=f"trunk_cyl_{side}",
            type="cylinder",
            size=format_numbers((cyl.radius, cyl.half_length)),
            pos=format_numbers((0.0, y, 0.0)),
            zaxis="1 0 0",
        )
    _visual(trunk, "trunk_visual", robot.visual.body_rgba, type="box", size=format_numbers(robot.visual.trunk_half_size))
    ET.SubElement(trunk, "site", name="imu", pos="0 0 0", size="0.01")
    hx, hy, hz = b.trunk_box_half_size
    ET.SubElement(
        trunk,
        "site",
        name="trunk_touch",
        type="box",
        size=format_numbers((hx + 0.01, hy + cyl.radius, max(hz, cyl.radius) + 0.01)),
        rgba="0 0 0 0",
    )
    return trunk


def _add_leg(trunk: ET.Element, robot: RobotDescription, leg: str) -> None:
    """One leg as a chain of bodies under the trunk: hip, thigh, then the calf with the foot at its end."""
    hip = _add_hip(trunk, robot, leg)
    thigh = _add_thigh(hip, robot, leg)
    calf = _add_calf(thigh, robot, leg)
    _add_leg_visuals(robot, leg, hip, thigh, calf)


def _visual(body: ET.Element, name: str, rgba: tuple[float, ...], **attrs: str) -> None:
    """A visual-only geom (class ``visual``: drawn, no contact, no mass)."""
    ET.SubElement(body, "geom", {"name": name, "class": "visual", "rgba": format_numbers(rgba), **attrs})


def _add_leg_visuals(robot: RobotDescription, leg: str, hip: ET.Element, thigh: ET.Element, calf: ET.Element) -> None:
    """What the leg looks like: black motor housings at the hip and thigh joints, a thigh box from the thigh joint
    to the knee, a black knee, a calf capsule from the knee to the foot and a black foot (``visual:``)."""
    v, b, sign = robot.visual, robot.body, robot.leg_sign(leg)
    dark, black = v.body_rgba, v.joint_rgba
    hm, tm, kn = v.hip_motor, v.thigh_motor, v.knee
    hm_size, hm_pos = format_numbers((hm.radius, hm.half_length)), format_numbers((0.0, 0.0 + sign * hm.y, 0.0))
    _visual(hip, f"{leg}_hip_visual", black, type="cylinder", size=hm_size, pos=hm_pos, zaxis="1 0 0")
    tm_size, tm_pos = format_numbers((tm.radius, tm.half_length)), format_numbers((0.0, 0.0 + sign * tm.y, 0.0))
    _visual(thigh, f"{leg}_thigh_motor_visual", black, type="cylinder", size=tm_size, pos=tm_pos, zaxis="0 1 0")
    half = b.thigh_length / 2
    box = format_numbers((*v.thigh_half_width, half))
    _visual(thigh, f"{leg}_thigh_visual", dark, type="box", size=box, pos=format_numbers((0.0, 0.0, -half)))
    kn_size, kn_pos = format_numbers((kn.radius, kn.half_length)), format_numbers((0.0, 0.0 + sign * kn.y, 0.0))
    _visual(calf, f"{leg}_knee_visual", black, type="cylinder", size=kn_size, pos=kn_pos, zaxis="0 1 0")
    calf_line = format_numbers((0.0, 0.0, 0.0, 0.0, 0.0, -b.calf_length))
    _visual(calf, f"{leg}_calf_visual", dark, type="capsule", size=format_numbers(v.calf_radius), fromto=calf_line)
    foot = format_numbers((0.0, 0.0, -b.calf_length))
    _visual(calf, f"{leg}_foot_visual", black, type="sphere", size=format_numbers(b.foot_radius), pos=foot)


def _add_hip(trunk: ET.Element, robot: RobotDescription, leg: str) -> ET.Element:
    """The hip body at its offset on the trunk, with its abduction joint (about x) and cylinder."""
    b = robot.body
    hip = ET.SubElement(trunk, "body", name=f"{leg}_hip", pos=format_numbers(b.hip_offsets[leg]))
    _inertial(hip, b.hip[leg])
    _joint(hip, robot, leg, "hip", axis="1 0 0")
    hc = b.hip_cylinder
    ET.SubElement(hip, "geom", name=f"{leg}_hip_geom", type="cylinder", size=format_numbers((hc.radius, hc.half_length)), zaxis="0 1 0")
    return hip


def _add_thigh(hip: ET.Element, robot: RobotDescription, leg: str) -> ET.Element:
    """The thigh body (mirrored inertia per side), its joint (about y), capsule and contact site."""
    b = robot.body
    sign = robot.leg_sign(leg)
    thigh = ET.SubElement(hip, "body", name=f"{leg}_thigh", pos=format_numbers((0.0, sign * b.thigh_offset_y, 0.0)))
    _inertial(thigh, b.thigh_left if sign > 0 else b.thigh_right)
    _joint(thigh, robot, leg, "thigh", axis="0 1 0")
    _capsule(thigh, f"{leg}_thigh_geom", b.thigh_capsule)
    tc = b.thigh_capsule
    ET.SubElement(
        thigh,
        "site",
        name=f"{leg}_thigh_touch",
        type="capsule",
        size=format_numbers(tc.radius + 0.01),
        fromto=format_numbers(tc.start + tc.end),
        rgba="0 0 0 0",
    )
    return thigh


def _add_calf(thigh: ET.Element, robot: RobotDescription, leg: str) -> ET.Element:
    """The calf body, its joint (about y) and capsule, and the foot sphere with its force-sensor site."""
    b = robot.body
    calf = ET.SubElement(thigh, "body", name=f"{leg}_calf", pos=format_numbers((0.0, 0.0, -b.thigh_length)))
    _inertial(calf, b.calf)
    _joint(calf, robot, leg, "calf", axis="0 1 0")
    _capsule(calf, f"{leg}_calf_geom", b.calf_capsule)
    foot_pos = format_numbers((0.0, 0.0, -b.calf_length))
    ET.SubElement(
        calf,
        "geom",
        name=f"{leg}_foot",
        type="sphere",
        size=format_numbers(b.foot_radius),
        pos=foot_pos,
        friction=format_numbers((b.foot_friction, 0.02, 0.01)),
        condim="6",
        priority="1",
        solimp="0.015 1 0.031",
        solref="0.02 1",
    )
    ET.SubElement(calf, "site", name=f"{leg}_foot_site", type="sphere", size=format_numbers(b.foot_radius + 0.005), pos=foot_pos)
    return calf


def _add_actuators(root: ET.Element, robot: RobotDescription) -> None:
    """One PD ``general`` actuator per joint (see the module docstring), force-limited to the joint's torque limit."""
    c = robot.control
    actuator = ET.SubElement(root, "actuator")
    for name, part in zip(robot.joint_names, [robot.joint_part(i) for i in range(robot.num_joints)]):
        limit = robot.joints.torque_limit[part]
        ET.SubElement(
            actuator,
            "general",
            name=name.removesuffix("_joint"),
            joint=name,
            gainprm=format_numbers(c.kp),
            biastype="affine",
            biasprm=format_numbers((0.0, -c.kp, -c.kd)),
            forcerange=format_numbers((-limit, limit)),
        )


def _add_sensors(root: ET.Element, robot: RobotDescription) -> None:
    """Touch sensors on the feet, trunk and thighs and each actuator's torque: the contacts and torques the backends read by name."""
    sensor = ET.SubElement(root, "sensor")
    for leg in robot.legs:
        ET.SubElement(sensor, "touch", name=f"{leg}_foot_force", site=f"{leg}_foot_site")
    ET.SubElement(sensor, "touch", name="trunk_contact", site="trunk_touch")
    for leg in robot.legs:
        ET.SubElement(sensor, "touch", name=f"{leg}_thigh_contact", site=f"{leg}_thigh_touch")
    for name in robot.joint_names:
        ET.SubElement(sensor, "actuatorfrc", name=f"{name.removesuffix('_joint')}_torque", actuator=name.removesuffix("_joint"))


def _add_link_contacts(root: ET.Element, robot: RobotDescription) -> None:
    """Contact sensors ``{leg}_hip_contact`` and ``{leg}_calf_contact``: the normal force of the hip cylinder's
    and the calf capsule's strongest contact with the floor (the sensor's first value).

    Geom-matched contact sensors rather than touch sites: the foot sphere belongs to the calf body, and a
    touch site on the calf would also count the foot's ground contacts whenever their normal ray crosses
    the site (a steep calf in stance). Appended after the other sensors.
    """
    sensor = root.find("sensor")
    assert sensor is not None, "_add_sensors runs first"
    for part in ("hip", "calf"):
        for leg in robot.legs:
            name, geom = f"{leg}_{part}_contact", f"{leg}_{part}_geom"
            ET.SubElement(sensor, "contact", name=name, geom1=geom, geom2="floor", data="force", reduce="maxforce")


def _add_home_keyframe(root: ET.Element, robot: RobotDescription) -> None:
    """The ``home`` keyframe: the trunk at spawn height, upright, joints and PD targets at the default pose."""
    c = robot.control
    keyframe = ET.SubElement(root, "keyframe")
    qpos = (0.0, 0.0, c.spawn_height, 1.0, 0.0, 0.0, 0.0, *robot.default_joint_pos)
    ET.SubElement(keyframe, "key", name="home", qpos=format_numbers(qpos), ctrl=format_numbers(robot.default_joint_pos))


def _joint(body: ET.Element, robot: RobotDescription, leg: str, part: str, axis: str) -> None:
    assert part in JOINT_PARTS
    ET.SubElement(
        body,
        "joint",
        name=f"{leg}_{part}_joint",
        axis=axis,
        range=format_numbers(robot.joints.range[part]),
        damping=format_numbers(robot.joints.damping[part]),
    )
