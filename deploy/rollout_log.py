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

import collections
import io
import json
import os
import queue
import sys
import threading
import zipfile
from dataclasses import dataclass
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
            raise FileExistsError(f"{self.dir}: already holds a rollout log; choose a new --out")
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


@dataclass
class RolloutData:
    """A run's logged steps: every readable chunk concatenated in order, and where data is missing.

    ``segments`` are the lengths of the stretches of consecutive steps: a chunk that is missing from
    the numbering or unreadable (or holds other keys than the rest) ends one stretch, and its
    ``notes`` entry names the file. Consumers must not treat two segments as one episode.
    """

    arrays: dict[str, np.ndarray]
    segments: list[int]
    notes: list[str]  # every problem, in order
    gaps: list[str]  # what lies between segment k and k + 1 (len(segments) - 1 entries)

    def __len__(self) -> int:
        return sum(self.segments)

    def first_stretch(self, run_dir: str | Path) -> dict[str, np.ndarray]:
        """Segment 0 for a replay, saying on stderr what cuts it off when a gap does."""
        if self.gaps:
            print(f"replay: {run_dir}: {self.gaps[0]}; replaying the {self.segments[0]} steps before it", file=sys.stderr)
        return self.segment(0)

    def segment(self, k: int) -> dict[str, np.ndarray]:
        """The arrays of segment ``k`` (consecutive steps only)."""
        start = sum(self.segments[:k])
        return {name: v[start : start + self.segments[k]] for name, v in self.arrays.items()}


def _chunk_index(path: Path) -> int | None:
    stem = path.stem.removeprefix("chunk_")
    return int(stem) if stem.isdigit() else None


# A chunk as read: (index, file name, its arrays or what is wrong with it)
_Chunk = tuple[int, str, dict[str, np.ndarray] | str]


def read_log(run_dir: str | Path) -> RolloutData:
    """All complete chunks of a run, in order, with every gap named (see :class:`RolloutData`).

    The run's keys are those most of its chunks hold; a chunk with other keys, arrays of unequal
    length or non-numeric arrays is not used (a foreign or forged file), and says so.
    """
    run_dir = Path(run_dir)
    _check_log_dir(run_dir)
    notes: list[str] = []
    chunks = _load_chunks(run_dir, notes)
    parts, segments, gaps = _join_chunks(chunks, _run_keys(chunks), notes)
    if not parts:
        raise ValueError(f"{run_dir}: no readable rollout chunks ({CHUNK_GLOB})" + (f"; {'; '.join(notes)}" if notes else ""))
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return RolloutData(arrays, segments, notes, gaps)


def _check_log_dir(run_dir: Path) -> None:
    """Refuse a path that is no rollout log directory, with a message saying what to give instead."""
    if not run_dir.is_dir():
        what = "not found" if not run_dir.exists() else "a file, not a rollout log directory"
        raise ValueError(f"{run_dir}: {what}; give a deploy log directory (unio4 deploy --out)")
    if not (run_dir / "meta.yaml").is_file() and not any(run_dir.glob(CHUNK_GLOB)):
        raise ValueError(
            f"{run_dir}: not a rollout log: no readable rollout chunks ({CHUNK_GLOB}), no meta.yaml; give a deploy log directory"
        )


def _load_chunks(run_dir: Path, notes: list[str]) -> list[_Chunk]:
    """Every chunk file, by index, with its arrays or why it is unreadable; other names go to ``notes``."""
    chunks: list[_Chunk] = []
    for path in run_dir.glob(CHUNK_GLOB):
        index = _chunk_index(path)
        if index is None:
            notes.append(f"{path.name}: not a chunk name (chunk_NNNNNN.npz); ignored")
            continue
        try:
            with np.load(path, allow_pickle=False) as data:
                chunks.append((index, path.name, {k: data[k] for k in data.files}))
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            chunks.append((index, path.name, f"unreadable ({type(exc).__name__})"))
    chunks.sort(key=lambda item: item[0])
    return chunks


def _run_keys(chunks: list[_Chunk]) -> frozenset[str]:
    """The keys most readable chunks hold: a chunk with others is foreign to the run."""
    key_sets = collections.Counter(frozenset(p) for _, _, p in chunks if isinstance(p, dict))
    return key_sets.most_common(1)[0][0] if key_sets else frozenset()


def _chunk_problem(part: dict[str, np.ndarray], keys: frozenset[str]) -> str | None:
    """Why a readable chunk cannot join the run (other keys, unequal lengths, non-numeric arrays), or None."""
    lengths = {len(v) if v.ndim else -1 for v in part.values()}
    if set(part) != keys:
        return f"holds keys {sorted(part)}, the run's chunks hold {sorted(keys)}; not used"
    if len(lengths) != 1 or -1 in lengths:
        return "its arrays differ in length; not used"
    if any(v.dtype.kind not in "biuf" for v in part.values()):
        return "holds non-numeric arrays; not used"
    return None


def _join_chunks(chunks: list[_Chunk], keys: frozenset[str], notes: list[str]) -> tuple[list[dict[str, np.ndarray]], list[int], list[str]]:
    """The usable chunks in order, the segment lengths and the gaps between them; every problem goes to ``notes``."""
    parts: list[dict[str, np.ndarray]] = []
    segments: list[int] = []
    gaps: list[str] = []
    pending: list[str] = []  # problems since the last usable chunk: a gap if data follows
    expected = 0
    for index, name, part in chunks:
        if index > expected:
            last = f" to chunk_{index - 1:06d}.npz" if index - 1 > expected else ""
            pending.append(f"chunk_{expected:06d}.npz{last}: missing")
        expected = index + 1
        if isinstance(part, dict):
            part = _chunk_problem(part, keys) or part  # a problem replaces the arrays: the chunk is not used
        if isinstance(part, str):
            pending.append(f"{name}: {part}")
            continue
        n = len(next(iter(part.values())))
        if pending and segments:
            gaps.append("; ".join(pending))
            segments.append(n)
        elif segments:
            segments[-1] += n
        else:
            segments.append(n)
        notes += pending
        pending = []
        parts.append(part)
    notes += pending
    return parts, segments, gaps


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
