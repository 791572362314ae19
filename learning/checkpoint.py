"""Checkpoints with full training state, written atomically (temp file + fsync + rename)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from configs.loader import from_dict
from learning.policy import NetworkConfig


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` so that a crash mid-write leaves the previous file intact."""
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
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a unio4 checkpoint (expected a mapping)")
    if require_actor and "actor" not in state:
        raise ValueError(f"{path}: not a unio4 checkpoint (no 'actor' entry)")
    return state


def checkpoint_network(state: dict[str, Any], where: str) -> NetworkConfig | None:
    """The network config a checkpoint was trained with (offline: ``network``; online: ``config.network``)."""
    network = state.get("network") or state.get("config", {}).get("network")
    return None if network is None else from_dict(NetworkConfig, network, where=f"{where}: network")
