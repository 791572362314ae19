"""An engine in a worker process (sim.backends.bridge, sim.backends.remote_backend), and the Python 3.8 files of
the Isaac Gym worker that uses it.

The bridge is driven with MuJoCo served from a real worker process (``tests/mujoco_worker.py``): the
same randomised task must give the same numbers as MuJoCo in-process, to the bit. Isaac Gym itself
cannot run here; what the worker's interpreter loads must parse as Python 3.8 (here), and the worker
starts, speaks the protocol and reports a missing Isaac Gym in one line (test_isaacgym_backend.py).
"""

from __future__ import annotations

import ast
import io
import json
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import unio4.sim.task
from tests.test_cross_backend import randomised_rollout
from unio4.sim.backends.bridge import BridgeError, read_message, write_message
from unio4.sim.backends.remote_backend import RemoteBackend

ROOT = Path(__file__).resolve().parents[3]


MUJOCO_WORKER = [sys.executable, str(ROOT / "tests" / "mujoco_worker.py")]


BUILTIN_GENERICS = ("list", "dict", "tuple", "set", "type")


PYTHON38_FILES = ["sim/backends/bridge.py", "sim/backends/isaacgym_worker.py", "deploy/observations.py"]


def remote_mujoco(num_envs: int) -> RemoteBackend:
    return RemoteBackend(MUJOCO_WORKER, {"num_envs": num_envs}, "mujoco-worker")


def test_an_engine_in_a_worker_gives_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fully randomised task (friction, mass, gains, latency, pushes, resets) over MuJoCo in a worker."""
    pos_local, rew_local = randomised_rollout("mujoco", "go1_flat", 3, 25)
    made: list[RemoteBackend] = []

    def make_remote(name: str, robot: object, num_envs: int, terrain: object, **_: object) -> RemoteBackend:
        made.append(remote_mujoco(num_envs))
        return made[-1]

    monkeypatch.setattr(unio4.sim.task, "make_backend", make_remote)
    pos_remote, rew_remote = randomised_rollout("mujoco", "go1_flat", 3, 25)
    assert len(made) == 1 and made[0].worker.process.returncode == 0  # the task ran on it and closed it
    assert float(pos_local[:, :, :2].abs().max()) > 0.01  # the robots really moved
    assert torch.equal(pos_local, pos_remote) and torch.equal(rew_local, rew_remote)


def test_worker_errors_come_back_and_the_worker_survives_them() -> None:
    backend = remote_mujoco(2)
    try:
        with pytest.raises(BridgeError, match=r"mujoco-worker worker: .*Error"):
            backend.step(torch.zeros(2, 12))  # (N, 12) instead of (N, decimation, 12)
        state = backend.step(torch.zeros(2, backend.decimation, 12))  # still serving
        assert state.joint_pos.shape == (2, 12) and state.joint_pos.dtype == torch.float32
    finally:
        backend.close()
    assert backend.worker.process.returncode == 0  # a clean exit on close


def test_a_dead_worker_is_a_clear_error() -> None:
    backend = remote_mujoco(1)
    backend.worker.process.kill()
    backend.worker.process.wait()
    with pytest.raises(BridgeError, match=r"mujoco-worker worker exited with code -9 during 'step'"):
        backend.step(torch.zeros(1, backend.decimation, 12))
    backend.close()  # closing a dead worker is quiet


def frame(header: Any, payload: bytes = b"") -> io.BytesIO:
    raw = json.dumps(header).encode()
    return io.BytesIO(struct.pack("<I", len(raw)) + raw + payload)


def test_frames_round_trip_and_malformed_frames_are_named() -> None:
    stream = io.BytesIO()
    arrays: dict[str, np.ndarray] = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "ids": np.array([3, 1], dtype=np.int64),
        "empty": np.zeros((0, 4)),
    }
    write_message(stream, "step", {"k": 1}, arrays)
    stream.seek(0)
    message = read_message(stream)
    assert message is not None and message.op == "step" and message.meta == {"k": 1}
    for name, value in arrays.items():
        assert message.arrays[name].dtype == value.dtype and np.array_equal(message.arrays[name], value)
    message.arrays["a"][0, 0] = 7.0  # writable, so torch.from_numpy takes it without a copy or warning
    assert read_message(stream) is None  # a clean end of stream

    with pytest.raises(TypeError, match="array 'o': dtype object cannot cross"):
        write_message(io.BytesIO(), "step", arrays={"o": np.array([None])})
    with pytest.raises(BridgeError, match="expected a 4-byte header length, got 2"):
        read_message(io.BytesIO(b"\x01\x00"))
    with pytest.raises(BridgeError, match="header is not JSON"):
        read_message(io.BytesIO(struct.pack("<I", 3) + b"{{{"))
    with pytest.raises(BridgeError, match=r"header length .* exceeds"):
        read_message(io.BytesIO(struct.pack("<I", 1 << 30)))
    with pytest.raises(BridgeError, match="needs a string 'op'"):
        read_message(frame([1, 2]))
    with pytest.raises(BridgeError, match=r"array spec \['x', '<c16', \[1\]\]"):
        read_message(frame({"op": "step", "meta": {}, "arrays": [["x", "<c16", [1]]]}))
    with pytest.raises(BridgeError, match="array 'x' has shape"):
        read_message(frame({"op": "step", "meta": {}, "arrays": [["x", "<f4", [-1]]]}))
    with pytest.raises(BridgeError, match="expected 24 bytes of array 'x', got 8"):
        read_message(frame({"op": "step", "meta": {}, "arrays": [["x", "<f4", [2, 3]]]}, b"\x00" * 8))


def runtime_generics(tree: ast.AST) -> list[str]:
    """``list[int]``-style subscripts and ``X | Y`` unions outside annotations: Python 3.8 evaluates those."""
    annotations: set[int] = set()
    for node in ast.walk(tree):
        for annotation in [getattr(node, "annotation", None), getattr(node, "returns", None)]:
            if annotation is not None:
                annotations.update(id(n) for n in ast.walk(annotation))
    found = []
    for node in ast.walk(tree):
        if id(node) in annotations:
            continue
        builtin = isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in BUILTIN_GENERICS
        if builtin:
            found.append(f"line {node.lineno}: {node.value.id}[...]")  # type: ignore[attr-defined]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and isinstance(node.right, ast.Constant):
            if node.right.value is None:
                found.append(f"line {node.lineno}: ... | None")
    return found


@pytest.mark.parametrize("path", PYTHON38_FILES)
def test_worker_side_files_are_python_38(path: str) -> None:
    """What the Isaac Gym interpreter loads must parse as Python 3.8 and evaluate no newer typing at run time."""
    source = (ROOT / path).read_text()
    tree = ast.parse(source, filename=path, feature_version=(3, 8))
    assert "from __future__ import annotations" in source  # annotations stay unevaluated strings
    assert runtime_generics(tree) == []
    assert runtime_generics(ast.parse("x = list[int]\ny: list[int] = []\nz = int | None")) == ["line 1: list[...]", "line 3: ... | None"]
