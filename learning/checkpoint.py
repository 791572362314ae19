"""Checkpoints with full training state, written atomically (temp file + fsync + rename).

A checkpoint holds tensors and plain data only (mappings, lists, tuples, strings, numbers, bools,
None), and is read with ``torch.load(weights_only=True)``: a file from elsewhere cannot run code
on load (a pickle could). :func:`save_checkpoint` refuses anything else, naming the entry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import torch

from unio4.configs.loader import from_dict
from unio4.learning.policy import NetworkConfig

PLAIN = (str, int, float, bool, type(None), torch.Tensor, torch.Size)


def check_plain(value: Any, where: str = "checkpoint") -> None:
    """Raise ``TypeError`` naming the entry of ``value`` that is not a tensor or plain data."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}; checkpoints hold str or int keys")
            check_plain(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, PLAIN):
        raise TypeError(f"{where}: a {type(value).__module__}.{type(value).__name__}; checkpoints hold tensors and plain data only")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors and plain data only) so that a crash mid-write leaves the previous file intact."""
    check_plain(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, require_actor: bool = True) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, with a one-line error if unusable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt or unsafe file
        raise ValueError(
            f"{path}: not a readable unio4 checkpoint (torch.load: {load_failure(exc)}); give a .pt from unio4 train"
        ) from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a unio4 checkpoint (expected a mapping)")
    if require_actor and "actor" not in state:
        raise ValueError(f"{path}: not a unio4 checkpoint (no 'actor' entry)")
    return state


def load_failure(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, without torch's advice to retry with
    ``weights_only=False`` (which would run whatever code the file holds).
    """
    text = str(exc).strip()
    if "WeightsUnpickler error:" in text:  # the reason follows the advice: "Unsupported operand 35", "Unsupported global: ..."
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
    lines = [line.strip() for line in text.splitlines() if line.strip() and "weights_only" not in line]
    return lines[0] if lines else type(exc).__name__


def checkpoint_network(state: dict[str, Any], where: str) -> NetworkConfig | None:
    """The network config a checkpoint was trained with (offline: ``network``; online: ``config.network``)."""
    network = state.get("network") or state.get("config", {}).get("network")
    return None if network is None else from_dict(NetworkConfig, network, where=f"{where}: network")


class Resumable(Protocol):
    """What a trainer's parts expose for resuming: a module, an optimiser."""

    def state_dict(self) -> Any:
        """Everything needed to continue."""

    def load_state_dict(self, state: Any) -> Any:
        """Continue from :meth:`state_dict`."""


def training_state(parts: dict[str, Resumable], generator: torch.Generator) -> dict[str, Any]:
    """A trainer's resumable state: each part's state dict under its name, then its sampling generator's."""
    return {**{name: part.state_dict() for name, part in parts.items()}, "generator": generator.get_state()}


def load_training_state(state: dict[str, Any], parts: dict[str, Resumable], generator: torch.Generator) -> None:
    """Restore :func:`training_state` into ``parts`` and ``generator``."""
    for name, part in parts.items():
        part.load_state_dict(state[name])
    generator.set_state(state["generator"])
