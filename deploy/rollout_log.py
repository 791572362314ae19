"""Crash-safe rollout logs: the control loop hands records over, a writer thread puts them on disk.

A run directory holds
- ``meta.yaml``: what ran (bundle manifest, mode, command source, rates), written before step 1;
- ``chunk_000000.npz``, ``chunk_000001.npz``, ...: ``chunk_steps`` policy steps each, every key an
  array with the step as its first axis;
- ``events.jsonl``: safety events and phase changes, one JSON object per line, fsynced;
- ``summary.yaml``: timing statistics and how the run ended, written at the end.

Every file appears atomically (written to a temporary name, fsynced, renamed, directory fsynced),
so after ``kill -9`` every chunk on disk is complete and readable and at most the open chunk (the
steps since the last one) is lost. The control loop never waits on the disk: it only appends to a
list and, once per chunk, puts that list on a queue.
"""

from __future__ import annotations

import io
import json
import os
import queue
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

CHUNK_GLOB = "chunk_*.npz"


def write_atomic(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` as the bytes of an uncompressed .npz file."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds as allow_pickle
    return buffer.getvalue()


class RolloutLog:
    """Append per-step records; chunks are written by a background thread."""

    def __init__(self, run_dir: str | Path, meta: dict[str, Any], chunk_steps: int = 50) -> None:
        if chunk_steps < 1:
            raise ValueError("chunk_steps must be >= 1")
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if any(self.dir.glob(CHUNK_GLOB)):
            raise FileExistsError(f"{self.dir}: already holds a rollout log; choose a new --log-dir")
        write_atomic(self.dir / "meta.yaml", yaml.safe_dump(meta, sort_keys=False).encode())
        self.chunk_steps = chunk_steps
        self.steps = 0
        self._records: list[dict[str, Any]] = []
        self._chunks = 0
        self._queue: queue.Queue[tuple[Path, list[dict[str, Any]]] | None] = queue.Queue()
        self._events = (self.dir / "events.jsonl").open("a")
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_loop, name="rollout-log", daemon=True)
        self._thread.start()

    def append(self, record: dict[str, Any]) -> None:
        """One policy step (arrays or scalars, the same keys every step); never blocks on disk."""
        self._records.append(record)
        self.steps += 1
        if len(self._records) >= self.chunk_steps:
            self._flush()

    def event(self, kind: str, **fields: Any) -> None:
        """A safety event or phase change; written and fsynced at once (events are rare)."""
        self._events.write(json.dumps({"event": kind, **fields}, default=float) + "\n")
        self._events.flush()
        os.fsync(self._events.fileno())

    def _flush(self) -> None:
        if self._records:
            self._queue.put((self.dir / f"chunk_{self._chunks:06d}.npz", self._records))
            self._chunks += 1
            self._records = []

    def _write_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            path, records = item
            try:
                arrays = {key: np.stack([np.asarray(r[key]) for r in records]) for key in records[0]}
                write_atomic(path, npz_bytes(arrays))
            except BaseException as exc:  # noqa: BLE001 - reported by close(); the loop must go on
                self._error = exc

    def close(self, summary: dict[str, Any]) -> None:
        """Write the open chunk and ``summary.yaml``; wait for the writer."""
        self._flush()
        self._queue.put(None)
        self._thread.join()
        self._events.close()
        write_atomic(
            self.dir / "summary.yaml", yaml.safe_dump({**summary, "steps": self.steps, "chunks": self._chunks}, sort_keys=False).encode()
        )
        if self._error is not None:
            raise OSError(f"{self.dir}: a chunk could not be written ({self._error})")


def read_chunks(run_dir: str | Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """All complete chunks of a run, concatenated in order, and a note for each unreadable one."""
    run_dir = Path(run_dir)
    parts: list[dict[str, np.ndarray]] = []
    skipped: list[str] = []
    for path in sorted(run_dir.glob(CHUNK_GLOB)):
        try:
            with np.load(path) as data:
                parts.append({k: data[k] for k in data.files})
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            skipped.append(f"{path.name}: unreadable ({type(exc).__name__})")
    if not parts:
        raise ValueError(f"{run_dir}: no readable rollout chunks ({CHUNK_GLOB})")
    keys = parts[0].keys()
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}, skipped


def read_events(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's events; a torn last line (a kill mid-write) is dropped."""
    path = Path(run_dir) / "events.jsonl"
    if not path.is_file():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return events
