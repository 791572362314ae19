"""A physics engine in another process, behind the backend interface's six calls.

Some engines cannot live in unio4's interpreter: Isaac Gym Preview 4 supports Python <= 3.8 and
the torch of its time, while unio4 needs Python >= 3.10 and torch 2.13. Such an engine runs as a
worker process under its own interpreter and answers the calls of
:class:`unio4.sim.backends.interface.PhysicsBackend` (``reset``, ``step``, ``state``, ``set_dynamics``, ``push``,
``close``) over its stdin/stdout, with numpy arrays as the only currency.

Wire format, one frame per message: a 4-byte little-endian header length, a UTF-8 JSON header
``{"op": str, "meta": {...}, "arrays": [[name, dtype, shape], ...]}`` and the arrays' raw
C-order bytes, concatenated. It is plain data on purpose: no pickle (which would run code and ties
both ends to one numpy version) and nothing newer than Python 3.8 and numpy 1.17, because the
worker side of this module runs under the engine's own interpreter. Keep this file free of
unio4 imports and of syntax newer than 3.8 (``tests/sim/backends/test_bridge.py`` checks the latter).
"""

from __future__ import annotations

import contextlib
import json
import struct
import subprocess
import traceback
from typing import IO, Any, Callable, Dict, NamedTuple, Protocol, Sequence

import numpy as np

ENGINE_CALLS = ("reset", "step", "state", "set_dynamics", "push")
DTYPES = ("<f4", "<f8", "<i4", "<i8", "|b1", "|u1")  # what may cross; anything else is a malformed frame
MAX_HEADER_BYTES = 1 << 20
Arrays = Dict[str, np.ndarray]


class BridgeError(RuntimeError):
    """The worker failed, died, or sent something that is not a frame."""


class WorkerUnavailable(ImportError):
    """The worker's interpreter could not be started (missing, not executable)."""


class Message(NamedTuple):
    op: str
    meta: dict[str, Any]
    arrays: Arrays


def write_message(stream: IO[bytes], op: str, meta: dict[str, Any] | None = None, arrays: Arrays | None = None) -> None:
    """Send one frame and flush it."""
    arrays = arrays or {}
    blobs, specs = [], []
    for name, value in arrays.items():
        array = np.ascontiguousarray(value)
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        if dtype.str not in DTYPES:
            raise TypeError(f"array {name!r}: dtype {array.dtype} cannot cross the bridge (allowed: {', '.join(DTYPES)})")
        array = array.astype(dtype, copy=False)
        specs.append([name, dtype.str, list(array.shape)])
        blobs.append(array.tobytes())
    header = json.dumps({"op": op, "meta": meta or {}, "arrays": specs}).encode()
    stream.write(struct.pack("<I", len(header)) + header + b"".join(blobs))
    stream.flush()


def _read_exactly(stream: IO[bytes], n: int, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise BridgeError(f"truncated frame: expected {n} bytes of {what}, got {len(data)}")
    return data


def read_message(stream: IO[bytes]) -> Message | None:
    """The next frame, or ``None`` at a clean end of stream; a malformed frame is a :class:`BridgeError`."""
    prefix = stream.read(4)
    if not prefix:
        return None
    if len(prefix) != 4:
        raise BridgeError(f"truncated frame: expected a 4-byte header length, got {len(prefix)} bytes")
    (length,) = struct.unpack("<I", prefix)
    if length > MAX_HEADER_BYTES:
        raise BridgeError(f"malformed frame: header length {length} exceeds {MAX_HEADER_BYTES} bytes")
    try:
        header = json.loads(_read_exactly(stream, length, "header").decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BridgeError(f"malformed frame: header is not JSON ({exc})") from None
    if not isinstance(header, dict) or not isinstance(header.get("op"), str) or not isinstance(header.get("meta"), dict):
        raise BridgeError("malformed frame: header needs a string 'op' and an object 'meta'")
    arrays: Arrays = {}
    for spec in header.get("arrays", []):
        if not (isinstance(spec, list) and len(spec) == 3 and isinstance(spec[0], str) and spec[1] in DTYPES):
            raise BridgeError(f"malformed frame: array spec {spec!r} is not [name, dtype in {DTYPES}, shape]")
        name, dtype, shape = spec
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise BridgeError(f"malformed frame: array {name!r} has shape {shape!r}, expected a list of sizes")
        count = int(np.prod(shape, dtype=np.int64))
        raw = _read_exactly(stream, count * np.dtype(dtype).itemsize, f"array {name!r}")
        arrays[name] = np.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)  # writable
    return Message(header["op"], header["meta"], arrays)


class Engine(Protocol):
    """The worker side: the backend interface with numpy arrays in and out."""

    num_envs: int
    decimation: int

    def reset(
        self,
        env_ids: np.ndarray,
        base_pos: np.ndarray,
        base_quat: np.ndarray,
        base_lin_vel_world: np.ndarray,
        base_ang_vel_body: np.ndarray,
        joint_pos: np.ndarray,
        joint_vel: np.ndarray,
    ) -> None: ...

    def step(self, joint_targets: np.ndarray) -> Arrays: ...

    def state(self) -> Arrays: ...

    def set_dynamics(
        self,
        env_ids: np.ndarray,
        friction: np.ndarray,
        added_mass: np.ndarray,
        kp_scale: np.ndarray,
        kd_scale: np.ndarray,
        motor_strength: np.ndarray,
    ) -> None: ...

    def push(self, env_ids: np.ndarray, delta_lin_vel_world: np.ndarray) -> None: ...

    def close(self) -> None: ...


def serve(make_engine: Callable[[dict[str, Any]], Engine], reader: IO[bytes], writer: IO[bytes]) -> None:
    """Answer frames until ``close`` or end of input. The first frame is ``init`` with the engine spec;
    every failure is answered as an ``error`` frame (type, message, traceback) rather than a dead pipe."""
    engine: Engine | None = None
    while True:
        message = read_message(reader)
        if message is None:
            break
        try:
            if message.op == "init":
                engine = make_engine(message.meta)
                write_message(writer, "ok", {"num_envs": int(engine.num_envs), "decimation": int(engine.decimation)})
            elif engine is None:
                raise BridgeError(f"call {message.op!r} before 'init'")
            elif message.op == "close":
                engine.close()
                write_message(writer, "ok")
                return
            elif message.op in ENGINE_CALLS:
                result = getattr(engine, message.op)(**message.arrays)
                write_message(writer, "ok", arrays=result or {})
            else:
                raise BridgeError(f"unknown call {message.op!r} (expected init, close or one of {', '.join(ENGINE_CALLS)})")
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller, which raises it
            meta = {"type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}
            write_message(writer, "error", meta)
    if engine is not None:
        engine.close()


class EngineProcess:
    """The parent side: start a worker, send ``init`` with ``spec``, then make calls that block for the answer.

    A worker's exception is raised here (an ``ImportError`` stays an ``ImportError``, so a missing
    engine reads the same as an in-process one); a worker that died is a :class:`BridgeError` that
    names its exit code.
    """

    def __init__(self, argv: Sequence[str], spec: dict[str, Any], name: str, env: dict[str, str] | None = None) -> None:
        self.name, self.argv = name, list(argv)
        try:
            self.process = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        except OSError as exc:
            raise WorkerUnavailable(f"{name}: cannot start the worker interpreter {argv[0]!r} ({exc.strerror})") from None
        try:
            self.info = self.call("init", spec)[0]
        except BaseException:
            self.kill()
            raise

    def call(self, op: str, meta: dict[str, Any] | None = None, **arrays: np.ndarray) -> tuple[dict[str, Any], Arrays]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            write_message(stdin, op, meta, arrays)
            reply = read_message(stdout)
        except (BrokenPipeError, ConnectionResetError):
            reply = None
        if reply is None:
            code = self.process.wait(timeout=10)
            if op == "init" and code in (126, 127):  # the shell's "cannot execute" / "not found", e.g. a pyenv shim
                raise WorkerUnavailable(f"{self.name}: the worker interpreter {self.argv[0]!r} exited with code {code}")
            raise BridgeError(f"{self.name} worker exited with code {code} during {op!r} (its stderr says why)")
        if reply.op == "error":
            kind, text = reply.meta.get("type", "Exception"), reply.meta.get("message", "")
            if kind in ("ImportError", "ModuleNotFoundError"):
                raise ImportError(text)
            raise BridgeError(f"{self.name} worker: {kind}: {text}\n{reply.meta.get('traceback', '')}")
        return reply.meta, reply.arrays

    def close(self) -> None:
        """Ask the worker to close its engine and exit; kill it if it does not within 10 s."""
        if self.process.poll() is None:
            try:
                self.call("close")
                self.process.wait(timeout=10)
            except (BridgeError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):  # unsent bytes to a dead worker
                    stream.close()
