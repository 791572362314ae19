"""Checkpoints (learning/checkpoint.py) never run code on load or save."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unio4.learning.checkpoint import load_checkpoint, save_checkpoint


def test_checkpoints_never_run_code(tmp_path: Path) -> None:
    """A pickle that would run code on load is refused by every reader of checkpoints (export, --init, --resume)."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    torch.save({"actor": {}, "payload": Evil()}, evil)
    result = subprocess.run(
        [sys.executable, "-m", "unio4.cli", "export", str(evil), "-o", str(tmp_path / "b")], capture_output=True, text=True
    )
    assert result.returncode == 2 and not marker.exists()
    assert (
        result.stderr.startswith(f"unio4: error: {evil}: not a readable unio4 checkpoint") and len(result.stderr.strip().splitlines()) == 1
    )
    with pytest.raises(ValueError, match="not a readable unio4 checkpoint"):
        load_checkpoint(evil)
    assert not marker.exists()
    with pytest.raises(TypeError, match=r"checkpoint.payload: a .*Evil; checkpoints hold tensors and plain data only"):
        save_checkpoint(tmp_path / "x.pt", {"actor": {}, "payload": Evil()})
