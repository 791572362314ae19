"""A strip chart of the commanded against the measured velocity, drawn beside each frame of ``unio4 play``.

Numbers written on a frame say where the robot is now; a trace says whether it got there, overshot or
drifts: the three rows (forward and sideways speed in the base frame, yaw rate) plot the whole rollout so
far, the command as a grey line and the measurement in colour. Drawn with PIL, so a video needs no
plotting library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ROWS = (("vx m/s", 1.2), ("vy m/s", 1.2), ("yaw rad/s", 1.5))  # label, half-range of the row's axis
COLOURS = ((230, 90, 60), (70, 170, 90), (80, 140, 230))
BACKGROUND, AXIS, COMMAND, TEXT = (24, 24, 28), (90, 90, 96), (170, 170, 170), (235, 235, 235)
MARGIN = 8  # px around each row


@dataclass(frozen=True)
class TracePanel:
    """Geometry of the chart: ``width`` x ``height`` pixels spanning ``seconds`` of rollout."""

    width: int
    height: int
    seconds: float

    def draw(self, measured: np.ndarray, command: tuple[float, float, float], dt: float) -> np.ndarray:
        """The panel (height, width, 3) uint8 for ``measured`` (T, 3): one row per channel, step k at time k * dt."""
        from PIL import Image, ImageDraw

        image = Image.new("RGB", (self.width, self.height), BACKGROUND)
        draw = ImageDraw.Draw(image)
        row_h = self.height // len(ROWS)
        for i, (label, half) in enumerate(ROWS):
            top = i * row_h
            y = self._scale(top, row_h, half)
            draw.line([(MARGIN, y(0.0)), (self.width - MARGIN, y(0.0))], fill=AXIS)
            draw.line([(MARGIN, y(command[i])), (self.width - MARGIN, y(command[i]))], fill=COMMAND, width=2)
            if len(measured) > 1:
                xs = MARGIN + np.arange(len(measured)) * dt / self.seconds * (self.width - 2 * MARGIN)
                draw.line([(float(x), y(float(v))) for x, v in zip(xs, measured[:, i], strict=True)], fill=COLOURS[i], width=2)
            draw.text((MARGIN, top + 2), f"{label}  cmd {command[i]:+.2f}", fill=TEXT)
        return np.asarray(image)

    @staticmethod
    def _scale(top: int, row_h: int, half: float) -> Callable[[float], float]:
        """Value -> pixel row inside the row starting at ``top``, values clipped to +- ``half``."""
        inner = row_h - 2 * MARGIN - 12  # room for the label
        mid = top + 12 + MARGIN + inner / 2
        return lambda v: float(mid - np.clip(v, -half, half) / half * inner / 2)


def beside(frame: np.ndarray, panel: np.ndarray) -> np.ndarray:
    """``frame`` with ``panel`` to its right (same height)."""
    return np.concatenate([frame, panel], axis=1)
