"""An actor's command remap: the policy acts at command ``c`` as it acted at ``c'`` (a command calibration).

``c' = c + (A - I) p(c) + r(c) d``, per history frame of the observation, with

- ``p(c)``: ``c`` on the sides of each command axis the calibration's walks went (forward, to the left, ...), 0 on
  the others, so the map acts only where it was measured and leaves the start policy as it was elsewhere;
- ``r(c) = min(1, max_k |p_k| / ramp_k)``: the offset ``d`` (a drift held while walking) ramps in from standing.

With both sides of every axis and ``ramp`` 0 it is the affine map ``A c + d`` everywhere. The remap lives in the
actor as buffers (no parameters: training leaves it as calibrated) and is exported with it, so the deploy runtime
runs a calibrated bundle unchanged. An actor without a calibration stores nothing for it, and its checkpoints keep
their keys (docs/benchmarks/go1-sessions.md, "A calibration only where the walks went").
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

TERMS = ("matrix", "offset", "positive", "negative", "ramp")  # the map itself, in command units
BUFFERS = ("embed", "scale", *TERMS)  # and where the commands sit in the observation


def remap_change(c: torch.Tensor, m: dict[str, torch.Tensor]) -> torch.Tensor:
    """``c' - c`` for commands ``c`` (..., 3) under the remap ``m`` (its ``matrix``, ``offset``, ``positive``,
    ``negative`` and ``ramp``, of ``c``'s dtype).
    """
    reach = torch.where(c > 0, m["positive"], m["negative"]) * c  # p(c)
    ramp = m["ramp"]
    share = torch.where(ramp > 0, reach.abs() / ramp.clamp_min(1e-9), torch.ones_like(reach))
    ramped = share.amax(dim=-1, keepdim=True).clamp(max=1.0)  # r(c)
    return reach @ (m["matrix"] - torch.eye(3, dtype=c.dtype)).T + ramped * m["offset"]


class CommandRemap(nn.Module):
    """The remap as buffers: ``embed`` (3F, obs_dim) picks the F frames' commands (as observed: scaled by ``scale``)
    out of the observation; ``matrix`` ``A``, ``offset`` ``d``, the walked sides ``positive`` / ``negative`` (1/0 per
    axis) and ``ramp``, all in command units. Empty ``embed``: no remap.
    """

    embed: torch.Tensor
    scale: torch.Tensor
    matrix: torch.Tensor
    offset: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor
    ramp: torch.Tensor

    def __init__(self, obs_dim: int) -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.reset()

    def reset(self) -> None:
        """No remap."""
        for name in BUFFERS:
            self.register_buffer(name, torch.zeros(0), persistent=True)

    @property
    def active(self) -> bool:
        """Whether a remap is set."""
        return self.embed.shape[0] > 0

    def set(self, values: dict[str, torch.Tensor]) -> None:
        """Set the remap from its buffers' values (``BUFFERS``)."""
        for name in BUFFERS:
            self.register_buffer(name, values[name].detach().clone().float(), persistent=True)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs`` with every frame's command remapped."""
        if not self.active:
            return obs
        frames = self.embed.shape[0] // 3
        c = (obs @ self.embed.T).unflatten(-1, (frames, 3)) / self.scale
        delta = remap_change(c, {name: getattr(self, name) for name in BUFFERS})
        return obs + (delta * self.scale).flatten(-2) @ self.embed  # zero where the remap leaves c as it is

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        if self.active:  # an uncalibrated actor's checkpoint keeps the keys it always had
            super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        present = [name for name in BUFFERS if prefix + name in state_dict]
        embed = state_dict.get(prefix + "embed")
        if not present or (isinstance(embed, torch.Tensor) and embed.numel() == 0):  # none, or an empty one (a member of an ensemble)
            self.reset()
        elif len(present) < len(BUFFERS):
            missing_keys.extend(prefix + name for name in BUFFERS if name not in present)
        else:
            values = {name: state_dict[prefix + name] for name in BUFFERS}
            problem = self.malformed(values)
            if problem:
                error_msgs.append(f"{prefix}: {problem}")
            else:
                self.set(values)

    def malformed(self, values: dict[str, Any]) -> str:
        """What is wrong with a remap's buffer values ('' when nothing): shapes, finiteness, sides of 0 or 1."""
        shapes = {name: (3,) for name in BUFFERS} | {"matrix": (3, 3)}
        for name, value in values.items():
            if not isinstance(value, torch.Tensor) or not value.is_floating_point() or not torch.isfinite(value).all():
                return f"{name}: expected a finite float tensor"
            if name != "embed" and tuple(value.shape) != shapes[name]:
                return f"{name}: expected shape {shapes[name]}, got {tuple(value.shape)}"
        embed = values["embed"]
        if embed.dim() != 2 or embed.shape[0] % 3 or embed.shape[1] != self.obs_dim:
            return f"embed: expected shape (3 x frames, {self.obs_dim}), got {tuple(embed.shape)}"
        if not all(bool(((values[n] == 0) | (values[n] == 1)).all()) for n in ("positive", "negative")):
            return "positive/negative: expected 0 or 1 per axis"
        return "" if bool((values["scale"] > 0).all() and (values["ramp"] >= 0).all()) else "scale > 0 and ramp >= 0 expected"
