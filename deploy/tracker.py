"""A tracking camera's reading of the trunk's velocity, logged beside leg odometry.

Leg odometry assumes a stance foot does not move, so it reads a walking Go1's speed off by a factor
nothing on the robot can tell (0.74-1.09 x in the walks measured: docs/benchmarks/go1-sessions.md,
"Leg odometry's scale and the check"). The Uni-O4 authors' real-world stage measured the trunk with a
RealSense T265 on it instead. The runtime reads such a tracker over UDP: it subscribes at the tracker's
address (a 4-byte datagram, again every ``resubscribe_s`` while no reading arrives) and receives
fixed-size readings, the trunk's linear velocity in the base frame (m/s: x forward, y left, z up) and,
in the second format, its angular velocity (rad/s, same axes). The camera's angular velocity is read
for the yaw rate because the robot's own gyro carries a bias the walks cannot separate from a turn
(docs/benchmarks/go1-sessions.md, "A calibration replayed"); a reading without it is NaN there.
Every datagram is validated (size, tag, finite, at most ``MAX_SPEED`` and ``MAX_RATE``) before it is
used; a reading older than ``max_age_s`` is not, and the log then holds NaN for that step. A bridge on
the robot's computer publishes the camera's readings in either format; ``unio4 emulate --tracker-port``
publishes the emulated trunk's true velocities with a camera's noise.

numpy and the standard library only: this runs on the robot's computer with the runtime.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

import numpy as np

from unio4.configs.loader import bounded, check_fields
from unio4.deploy.robot_io import resolve_host

SUBSCRIBE = b"U4TS"  # a subscriber's datagram: stream readings to my address
READING_TAG = b"U4TV"
READING = struct.Struct("<4sIdfff")  # tag, sequence number, sender's clock (s), vx, vy, vz (m/s, base frame)
RATES_TAG = b"U4TR"
READING_RATES = struct.Struct("<4sIdffffff")  # as READING, then wx, wy, wz (rad/s, base frame)
MAX_SPEED = 10.0  # m/s: a trunk reading above it is not a Go1's
MAX_RATE = 20.0  # rad/s: nor a turn faster than this
FORMATS = {READING.size: (READING_TAG, READING), READING_RATES.size: (RATES_TAG, READING_RATES)}


class TrackerError(ValueError):
    """A datagram that is not a valid tracker reading."""


@dataclass(frozen=True)
class TrackerConfig:
    """Where the runtime reads a tracking camera (``tracker`` in the deploy config)."""

    address: str | None = None  # HOST:PORT of the tracker's stream; None: no tracker, leg odometry alone
    max_age_s: float = bounded(0.05, gt=0, le=1)  # a reading older than this is not used (NaN in the log)
    resubscribe_s: float = bounded(0.5, gt=0, le=60)  # subscribe again after this long without a reading

    def __post_init__(self) -> None:
        check_fields(self)
        if self.address is not None:
            tracker_address(self.address)


def tracker_address(text: str, name: str = "tracker.address") -> tuple[str, int]:
    """``HOST:PORT`` as (host, port), or a one-line error naming the field ``name``."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{name} {text!r}: expected HOST:PORT, e.g. 192.168.123.15:7010 (PORT 1-65535)")
    return host, int(port)


def resolve_tracker(text: str) -> tuple[str, int]:
    """``HOST:PORT`` as (IPv4 address, port), or a one-line error naming ``tracker.address``."""
    host, port = tracker_address(text)
    try:
        return resolve_host(host, port), port
    except ValueError:  # resolve_host's message names the robot's address
        raise ValueError(f"tracker.address {text!r}: cannot resolve {host!r}") from None


def encode_reading(seq: int, t: float, velocity: np.ndarray, rates: np.ndarray | None = None) -> bytes:
    """One reading as its datagram: the linear velocity, and the angular one where ``rates`` is given."""
    if rates is None:
        return READING.pack(READING_TAG, seq & 0xFFFFFFFF, t, *(float(v) for v in velocity[:3]))
    values = (float(v) for v in (*velocity[:3], *rates[:3]))
    return READING_RATES.pack(RATES_TAG, seq & 0xFFFFFFFF, t, *values)


def decode_reading(datagram: bytes) -> np.ndarray:
    """The (vx, vy, vz, wx, wy, wz) a datagram carries (the rates NaN in the first format), or
    :class:`TrackerError` saying why it is not a reading.
    """
    if len(datagram) not in FORMATS:
        raise TrackerError(f"{len(datagram)} bytes, a reading has {READING.size} or {READING_RATES.size}")
    expected, layout = FORMATS[len(datagram)]
    tag, _, t, *values = layout.unpack(datagram)
    if tag != expected:
        raise TrackerError(f"tag {tag!r}, expected {expected!r} for a {len(datagram)}-byte reading")
    v, w = np.array(values[:3], dtype=np.float64), np.array(values[3:], dtype=np.float64)
    if not (np.isfinite(t) and np.all(np.isfinite(v)) and np.all(np.abs(v) <= MAX_SPEED)):
        raise TrackerError(f"velocity {v.tolist()} at t={t}: expected finite values within {MAX_SPEED} m/s")
    if not (np.all(np.isfinite(w)) and np.all(np.abs(w) <= MAX_RATE)):
        raise TrackerError(f"angular velocity {w.tolist()}: expected finite values within {MAX_RATE} rad/s")
    return np.concatenate([v, w if len(w) else np.full(3, np.nan)])


class TrackerLink:
    """The runtime's end of the tracker stream: :meth:`poll` the latest fresh reading, never blocking."""

    def __init__(self, cfg: TrackerConfig, now: float) -> None:
        """Subscribe to the tracker at ``cfg.address``; ``now`` is the clock :meth:`poll` is given (s)."""
        assert cfg.address is not None
        self.cfg = cfg
        self.address = resolve_tracker(cfg.address)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind(("", 0))
        self.latest, self.latest_at, self.subscribed_at = np.full(6, np.nan), -np.inf, -np.inf
        self.stats = {"readings": 0, "rejected": 0}
        self._subscribe(now)

    def poll(self, now: float) -> np.ndarray:
        """The newest reading (vx, vy, vz, wx, wy, wz) no older than ``max_age_s`` at ``now`` (monotonic s), else NaN (6,)."""
        while True:
            try:
                datagram, sender = self.sock.recvfrom(64)
            except (BlockingIOError, ConnectionRefusedError):  # nothing queued; an ICMP refusal from a tracker not up yet
                break
            try:
                if sender != self.address:
                    raise TrackerError(f"from {sender[0]}:{sender[1]}, not the tracker")
                self.latest, self.latest_at = decode_reading(datagram), now
                self.stats["readings"] += 1
            except TrackerError:
                self.stats["rejected"] += 1
        if now - self.latest_at > self.cfg.resubscribe_s and now - self.subscribed_at > self.cfg.resubscribe_s:
            self._subscribe(now)
        return self.latest.copy() if now - self.latest_at <= self.cfg.max_age_s else np.full(6, np.nan)

    def _subscribe(self, now: float) -> None:
        """Ask the tracker to stream to this socket (UDP: asked again while nothing comes)."""
        try:
            self.sock.sendto(SUBSCRIBE, self.address)
        except OSError:  # unreachable now; the next poll asks again
            pass
        self.subscribed_at = now

    def close(self) -> None:
        """Close the socket (the tracker stops streaming when its sends fail)."""
        self.sock.close()
