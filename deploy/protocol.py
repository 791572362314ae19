"""The Go1 low-level UDP wire format of ``unitree_legged_sdk`` 3.8: LowCmd (614 B) and LowState (807 B).

The SDK converts its C++ structs to a packed, little-endian wire layout: floats for positions and
velocities, fixed-point integers for torque (x256) and gains (Kp x32, Kd x16), truncated toward zero as a C cast does, a CRC32 in the last
4 bytes. The layout here was measured from the real SDK binary and is proved by tests in both
directions (the SDK packs random LowCmds that :func:`decode_low_cmd` reads back; LowStates from
:func:`encode_low_state` are read back by the SDK's ``Recv``/``GetRecv``).

numpy only: the emulator serves this format and the runtime can inspect it on the robot.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field

import numpy as np

NUM_MOTORS = 20  # slots on the wire; Go1 uses the first 12 (SDK order FR, FL, RR, RL x hip, thigh, calf)
LOW_LEVEL = 0xFF  # levelFlag of low-level packets
HEAD = (0xFE, 0xEF)
MODE_SERVO = 0x0A  # motor mode: PD + feed-forward torque
POS_STOP = 2.146e9  # "hold" sentinels of the SDK (no position / velocity term)
VEL_STOP = 16000.0

TAU_SCALE = 256.0  # tau and tauEst travel as int16 x 256
KP_SCALE = 32.0  # Kp as uint16 x 32
KD_SCALE = 16.0  # Kd as uint16 x 16

_HEADER = [
    ("head", "u1", (2,)),
    ("levelFlag", "u1"),
    ("frameReserve", "u1"),
    ("SN", "<u4", (2,)),
    ("version", "<u4", (2,)),
    ("bandWidth", "<u2"),
]


def _packed(fields: list[tuple]) -> np.dtype:
    """A dtype with the fields back to back (no alignment padding), as the wire has them."""
    names, formats, offsets, offset = [], [], [], 0
    for name, fmt, *shape in fields:
        dt = np.dtype((fmt, shape[0])) if shape else np.dtype(fmt)
        names.append(name)
        formats.append(dt)
        offsets.append(offset)
        offset += dt.itemsize
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": offset})


MOTOR_CMD = _packed([("mode", "u1"), ("q", "<f4"), ("dq", "<f4"), ("tau", "<i2"), ("Kp", "<u2"), ("Kd", "<u2"), ("reserve", "<u4", (3,))])
LOW_CMD = _packed(
    [
        *_HEADER,
        ("motorCmd", MOTOR_CMD, (NUM_MOTORS,)),
        ("bms", "u1", (4,)),
        ("wirelessRemote", "u1", (40,)),
        ("reserve", "<u4"),
        ("crc", "<u4"),
    ]
)
IMU = _packed(
    [("quaternion", "<f4", (4,)), ("gyroscope", "<f4", (3,)), ("accelerometer", "<f4", (3,)), ("rpy", "<f4", (3,)), ("temperature", "i1")]
)
MOTOR_STATE = _packed(
    [
        ("mode", "u1"),
        ("q", "<f4"),
        ("dq", "<f4"),
        ("ddq", "<i2"),
        ("tauEst", "<i2"),
        ("q_raw", "<f4"),
        ("dq_raw", "<f4"),
        ("ddq_raw", "<i2"),
        ("temperature", "i1"),
        ("reserve", "<u4", (2,)),
    ]
)
LOW_STATE = _packed(
    [
        *_HEADER,
        ("imu", IMU),
        ("motorState", MOTOR_STATE, (NUM_MOTORS,)),
        ("bms", "u1", (24,)),
        ("footForce", "<i2", (4,)),
        ("footForceEst", "<i2", (4,)),
        ("tick", "<u4"),
        ("wirelessRemote", "u1", (40,)),
        ("reserve", "<u4"),
        ("crc", "<u4"),
    ]
)
LOW_CMD_SIZE = LOW_CMD.itemsize  # 614
LOW_STATE_SIZE = LOW_STATE.itemsize  # 807

# The remote's 40 bytes (xRockerBtnDataStruct): head[2], a 16-bit button field, then sticks as floats.
REMOTE_BUTTONS = ("R1", "L1", "start", "select", "R2", "L2", "F1", "F2", "A", "B", "X", "Y", "up", "right", "down", "left")
REMOTE = _packed(
    [("head", "u1", (2,)), ("btn", "<u2"), ("lx", "<f4"), ("rx", "<f4"), ("ry", "<f4"), ("L2", "<f4"), ("ly", "<f4"), ("idle", "u1", (16,))]
)


class ProtocolError(ValueError):
    """A datagram that is not a valid Go1 low-level packet."""


# ---- CRC ----------------------------------------------------------------------------------------
# Unitree's crc32_core: CRC-32/MPEG-2 (poly 0x04C11DB7, MSB first, init 0xFFFFFFFF, no final xor)
# over the packet as little-endian u32 words, each word fed from its most significant bit, all words
# but the last (the crc itself). zlib's CRC-32 is the same polynomial bit-reflected, so reversing the
# bits of every word turns the one into the other and keeps the work in C.
_BITREV8 = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def crc32_core(packet: bytes | bytearray | memoryview) -> int:
    """Unitree's CRC of ``packet`` (every whole u32 word except the last)."""
    words = (len(packet) >> 2) - 1
    data = np.frombuffer(packet, dtype="<u4", count=words).byteswap().tobytes().translate(_BITREV8)
    reflected = binascii.crc32(data) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def _seal(record: np.ndarray) -> bytes:
    """Bytes of a one-element packet record with its CRC filled in."""
    raw = bytearray(record.tobytes())
    raw[-4:] = crc32_core(raw).to_bytes(4, "little")
    return bytes(raw)


def _open(datagram: bytes, dtype: np.dtype, what: str) -> np.ndarray:
    """Parse and check length, head, level and CRC; raises :class:`ProtocolError` naming the field."""
    if len(datagram) != dtype.itemsize:
        raise ProtocolError(f"{what}: {len(datagram)} bytes, expected {dtype.itemsize}")
    rec = np.frombuffer(datagram, dtype=dtype, count=1)[0]
    if tuple(rec["head"]) != HEAD:
        raise ProtocolError(f"{what}.head: {bytes(rec['head']).hex()}, expected feef")
    if rec["levelFlag"] != LOW_LEVEL:
        raise ProtocolError(f"{what}.levelFlag: {int(rec['levelFlag']):#x}, expected {LOW_LEVEL:#x} (low level)")
    crc = crc32_core(datagram)
    if int(rec["crc"]) != crc:
        raise ProtocolError(f"{what}.crc: {int(rec['crc']):#010x}, computed {crc:#010x}")
    return rec


def _blank(dtype: np.dtype) -> np.ndarray:
    rec = np.zeros(1, dtype=dtype)
    rec["head"] = HEAD
    rec["levelFlag"] = LOW_LEVEL
    return rec


@dataclass
class LowCmd:
    """Motor commands for ``n`` motors (SDK order) and the remote bytes, in SI units."""

    mode: np.ndarray  # (n,) uint8
    q: np.ndarray  # (n,) rad
    dq: np.ndarray  # (n,) rad/s
    tau: np.ndarray  # (n,) N m feed-forward
    kp: np.ndarray  # (n,)
    kd: np.ndarray  # (n,)
    wireless_remote: bytes = bytes(40)


def encode_low_cmd(cmd: LowCmd) -> bytes:
    """The 614-byte LowCmd datagram of ``cmd``, CRC filled in."""
    rec = _blank(LOW_CMD)
    n = len(cmd.q)
    motors = rec["motorCmd"][0]
    motors["mode"][:n] = cmd.mode
    motors["q"][:n] = cmd.q
    motors["dq"][:n] = cmd.dq
    motors["tau"][:n] = _fixed(cmd.tau, TAU_SCALE, np.int16)
    motors["Kp"][:n] = _fixed(cmd.kp, KP_SCALE, np.uint16)
    motors["Kd"][:n] = _fixed(cmd.kd, KD_SCALE, np.uint16)
    rec["wirelessRemote"] = np.frombuffer(cmd.wireless_remote, dtype=np.uint8)
    return _seal(rec)


def decode_low_cmd(datagram: bytes, num_motors: int = 12) -> LowCmd:
    """Parse and check a LowCmd datagram (length, head, level, CRC); :class:`ProtocolError` names what is wrong.

    Values are decoded as they are, NaN and Inf included: judging them is the receiver's job.
    """
    rec = _open(datagram, LOW_CMD, "LowCmd")
    m = rec["motorCmd"][:num_motors]
    with np.errstate(invalid="ignore"):  # a signalling NaN on the wire stays a NaN, silently
        return _low_cmd(m, rec)


def _low_cmd(m: np.ndarray, rec: np.ndarray) -> LowCmd:
    return LowCmd(
        mode=m["mode"].copy(),
        q=m["q"].astype(np.float64),
        dq=m["dq"].astype(np.float64),
        tau=m["tau"] / TAU_SCALE,
        kp=m["Kp"] / KP_SCALE,
        kd=m["Kd"] / KD_SCALE,
        wireless_remote=rec["wirelessRemote"].tobytes(),
    )


@dataclass
class LowState:
    """What the robot reports each tick, for ``n`` motors (SDK order), in SI units."""

    tick: int
    quaternion: np.ndarray  # (4,) w, x, y, z
    gyroscope: np.ndarray  # (3,) rad/s, body frame
    accelerometer: np.ndarray  # (3,) m/s^2, body frame (specific force)
    rpy: np.ndarray  # (3,) rad
    q: np.ndarray  # (n,)
    dq: np.ndarray  # (n,)
    tau_est: np.ndarray  # (n,)
    foot_force: np.ndarray  # (4,) raw sensor units (int16)
    mode: np.ndarray = field(default_factory=lambda: np.full(12, MODE_SERVO, dtype=np.uint8))
    wireless_remote: bytes = bytes(40)
    temperature: int = 30

    @property
    def remote(self) -> Remote:
        """The wireless remote's buttons and sticks."""
        return decode_remote(self.wireless_remote)


def encode_low_state(state: LowState) -> bytes:
    """The 807-byte LowState datagram of ``state``, CRC filled in."""
    rec = _blank(LOW_STATE)
    rec["tick"] = state.tick & 0xFFFFFFFF
    imu = rec["imu"]
    imu["quaternion"] = state.quaternion
    imu["gyroscope"] = state.gyroscope
    imu["accelerometer"] = state.accelerometer
    imu["rpy"] = state.rpy
    imu["temperature"] = state.temperature
    n = len(state.q)
    motors = rec["motorState"][0]
    motors["mode"][:n] = state.mode
    motors["q"][:n] = state.q
    motors["dq"][:n] = state.dq
    motors["q_raw"][:n] = state.q
    motors["dq_raw"][:n] = state.dq
    motors["tauEst"][:n] = _fixed(state.tau_est, TAU_SCALE, np.int16)
    motors["temperature"][:n] = state.temperature
    rec["footForce"] = np.clip(np.rint(state.foot_force), -32768, 32767)
    rec["footForceEst"] = rec["footForce"]
    rec["wirelessRemote"] = np.frombuffer(state.wireless_remote, dtype=np.uint8)
    return _seal(rec)


def decode_low_state(datagram: bytes, num_motors: int = 12) -> LowState:
    """Parse and check a LowState datagram (length, head, level, CRC); :class:`ProtocolError` names what is wrong.

    Values are decoded as they are, NaN and Inf included: judging them is the receiver's job.
    """
    rec = _open(datagram, LOW_STATE, "LowState")
    with np.errstate(invalid="ignore"):  # a signalling NaN on the wire stays a NaN, silently
        return _low_state(rec["motorState"][:num_motors], rec)


def _low_state(m: np.ndarray, rec: np.ndarray) -> LowState:
    imu = rec["imu"]
    return LowState(
        tick=int(rec["tick"]),
        quaternion=imu["quaternion"].astype(np.float64),
        gyroscope=imu["gyroscope"].astype(np.float64),
        accelerometer=imu["accelerometer"].astype(np.float64),
        rpy=imu["rpy"].astype(np.float64),
        q=m["q"].astype(np.float64),
        dq=m["dq"].astype(np.float64),
        tau_est=m["tauEst"] / TAU_SCALE,
        foot_force=rec["footForce"].astype(np.float64),
        mode=m["mode"].copy(),
        wireless_remote=rec["wirelessRemote"].tobytes(),
        temperature=int(imu["temperature"]),
    )


def _fixed(values: np.ndarray, scale: float, dtype: type) -> np.ndarray:
    """Fixed-point the way the SDK does: scale, truncate toward zero, saturate."""
    info = np.iinfo(dtype)
    return np.clip(np.trunc(np.asarray(values, dtype=np.float64) * scale), info.min, info.max).astype(dtype)


# ---- the remote ---------------------------------------------------------------------------------
@dataclass
class Remote:
    """The wireless remote: pressed buttons and the two sticks (lx, ly, rx, ry in [-1, 1])."""

    buttons: frozenset[str] = frozenset()
    lx: float = 0.0
    ly: float = 0.0
    rx: float = 0.0
    ry: float = 0.0


def decode_remote(raw: bytes) -> Remote:
    """The remote's 40 bytes as pressed buttons and stick values."""
    rec = np.frombuffer(raw, dtype=REMOTE, count=1)[0]
    bits = int(rec["btn"])
    pressed = frozenset(name for i, name in enumerate(REMOTE_BUTTONS) if bits >> i & 1)
    return Remote(pressed, float(rec["lx"]), float(rec["ly"]), float(rec["rx"]), float(rec["ry"]))


def encode_remote(remote: Remote) -> bytes:
    """The remote's 40 bytes for ``remote``; unknown button names are an error."""
    unknown = set(remote.buttons) - set(REMOTE_BUTTONS)
    if unknown:
        raise ValueError(f"unknown remote buttons {sorted(unknown)}; known: {list(REMOTE_BUTTONS)}")
    rec = np.zeros(1, dtype=REMOTE)
    rec["btn"] = sum(1 << REMOTE_BUTTONS.index(b) for b in remote.buttons)
    for name in ("lx", "ly", "rx", "ry"):
        rec[name] = getattr(remote, name)
    return rec.tobytes()
