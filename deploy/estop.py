"""A serial emergency stop: a small board sends a heartbeat byte; silence or a stop byte stops the robot.

The protocol is one byte at a time, so any microcontroller with a button can be the e-stop:
``H`` (heartbeat) at least every ``heartbeat_timeout_s``, ``S`` when the button is pressed. The
runtime polls without blocking each tick. A missing heartbeat means the board, cable or the
operator's link is gone, and the robot must not keep walking, so it counts as a stop.
Any pyserial URL works: ``/dev/ttyUSB0``, ``loop://`` (tests), a pty path.
"""

from __future__ import annotations

from dataclasses import dataclass

import serial

from unio4.configs.loader import bounded

HEARTBEAT = b"H"
STOP = b"S"


@dataclass(frozen=True)
class EStopConfig:
    """Serial e-stop link: port or pyserial URL (empty: none), baud rate, heartbeat timeout."""

    url: str = ""  # pyserial port or URL; empty disables the e-stop
    baudrate: int = bounded(115200, gt=0)
    heartbeat_timeout_s: float = bounded(0.5, gt=0, le=10)


class SerialEStop:
    """Non-blocking e-stop reader; :meth:`poll` returns the reason to stop, or None."""

    def __init__(self, cfg: EStopConfig, now: float) -> None:
        self.cfg = cfg
        try:
            self.port = serial.serial_for_url(cfg.url, baudrate=cfg.baudrate, timeout=0)
        except (serial.SerialException, ValueError) as exc:
            raise ValueError(f"e-stop {cfg.url!r}: cannot open ({exc})") from None
        self._last_heartbeat = now
        self.heartbeats = 0

    def poll(self, now: float) -> str | None:
        """The reason to stop at time ``now`` (stop byte, lost heartbeat, dead port), or None."""
        waiting = self.port.in_waiting
        data = self.port.read(waiting) if waiting else b""
        if STOP in data:
            return f"e-stop pressed ({self.cfg.url})"
        if HEARTBEAT in data:
            self.heartbeats += data.count(HEARTBEAT)
            self._last_heartbeat = now
        silent = now - self._last_heartbeat
        if silent > self.cfg.heartbeat_timeout_s:
            return f"e-stop heartbeat lost: none for {silent * 1e3:.0f} ms (limit {self.cfg.heartbeat_timeout_s * 1e3:.0f} ms)"
        return None

    def close(self) -> None:
        """Release the serial port."""
        self.port.close()
