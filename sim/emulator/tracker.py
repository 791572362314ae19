"""The emulated robot's tracking camera: the trunk's true velocities, with a camera's noise, streamed to a subscriber.

Speaks :mod:`unio4.deploy.tracker`'s protocol, as a bridge beside a real Go1's RealSense T265 would: the
latest sender of a subscribe datagram receives a reading every ``1 / rate_hz`` of emulated time.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass

import numpy as np

from unio4.configs.loader import bounded, check_fields
from unio4.deploy.observations import rotate_inverse
from unio4.deploy.tracker import SUBSCRIBE, encode_reading


@dataclass(frozen=True)
class TrackerEmulation:
    """``unio4 emulate --tracker-port``: where and how the emulated tracking camera streams."""

    port: int | None = bounded(None, ge=0, le=65535)  # UDP port it listens on for a subscriber (0: any); None: no tracker
    rate_hz: float = bounded(200.0, gt=0, le=500)  # readings per second of emulated time (the T265 gives 200)
    noise_std: float = bounded(0.02, ge=0, le=1)  # m/s, per reading and axis (an assumption; docs/reality-zoo.md)
    rate_noise_std: float = bounded(0.02, ge=0, le=1)  # rad/s, per reading and axis; no bias (an assumption, likewise)

    def __post_init__(self) -> None:
        check_fields(self)


class EmulatedTracker:
    """The camera's socket and stream; :meth:`tick` after every physics tick."""

    def __init__(self, cfg: TrackerEmulation, sock: socket.socket, dt: float, seed: int) -> None:
        """Stream on ``sock`` (bound to the tracker's port) at ``cfg.rate_hz`` of emulated time (``dt`` s a tick)."""
        self.cfg = cfg
        self.sock = sock
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])
        self.every = max(1, round(1.0 / (cfg.rate_hz * dt)))  # physics ticks per reading
        self.rng = np.random.default_rng(seed + 7919)  # its own stream: a tracker leaves the robot's noise as it was
        self.subscriber: tuple[str, int] | None = None
        self.seq = 0
        self.ignored = 0

    def tick(self, ticks: int, time_s: float, base_quat: np.ndarray, lin_vel_world: np.ndarray, ang_vel: np.ndarray) -> None:
        """On every ``every``-th tick: take new subscribers, and send the latest one a reading (``ang_vel``: the
        trunk's true angular velocity in the base frame).
        """
        if ticks % self.every:
            return  # the socket is read on reading ticks only: the physics loop runs at 500 Hz
        self._read_subscriptions()
        if self.subscriber is None:
            return
        velocity = rotate_inverse(np, base_quat, lin_vel_world) + self.rng.normal(0.0, self.cfg.noise_std, 3)
        rates = ang_vel + self.rng.normal(0.0, self.cfg.rate_noise_std, 3)
        try:
            self.sock.sendto(encode_reading(self.seq, time_s, velocity, rates), self.subscriber)
        except OSError:  # the subscriber went away; a new one subscribes again
            self.subscriber = None
        self.seq += 1

    def _read_subscriptions(self) -> None:
        while True:
            try:
                datagram, sender = self.sock.recvfrom(64)
            except (BlockingIOError, ConnectionRefusedError):
                return
            if datagram == SUBSCRIBE:
                self.subscriber = sender
                continue
            self.ignored += 1
            if self.ignored <= 3:
                print(f"emulator: tracker ignored a {len(datagram)}-byte packet from {sender[0]}:{sender[1]}", file=sys.stderr)

    def close(self) -> None:
        self.sock.close()
