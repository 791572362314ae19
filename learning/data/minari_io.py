"""A D4RL-style HDF5 dataset as a Minari dataset: ``unio4 data export DATA.h5 --minari NAME``.

Written through minari's own API (:func:`minari.create_dataset_from_buffers` with one
``EpisodeBuffer`` per episode), so ``minari.load_dataset``, ``minari show`` and other Minari tooling
read it. What maps to what:

- episodes: cut after every row with ``terminals`` or ``timeouts`` set; Minari's ``terminations`` and
  ``truncations`` are those columns, its T + 1 ``observations`` are the episode's observations and
  the last row's ``next_observations``. Where a next observation differs from the following row
  inside an episode, all next observations go along as the ``next_observations`` info.
- spaces: ``Box(-inf, inf)`` of the observations' shape and dtype; ``Box(-b, b)`` for the actions with
  b the task's action bound (``task_config.action_clip``), ``Box(-inf, inf)`` if an action lies outside.
- ``infos/<key>``: Minari infos with one row per observation (row t: transition t; the last repeated).
- metadata: ``robot``, ``task``, ``reward_config`` (``task_config.rewards``), ``source_file`` and its
  ``source_sha256``, and the file's whole metadata under ``unio4_metadata``.

``load_dataset("minari:NAME")`` (:mod:`unio4.learning.data.dataset`) reads it back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unio4.deploy.bundle import sha256_file
from unio4.learning.data.dataset import (
    MINARI_METADATA,
    MINARI_NEXT,
    Dataset,
    dataset_action_bound,
    import_minari,
    minari_root,
)


@dataclass
class MinariExport:
    """What :func:`export_minari` wrote."""

    dataset_id: str
    root: Path
    episodes: int
    steps: int


@contextlib.contextmanager
def minari_datasets_path(root: str | Path | None) -> Iterator[Path]:
    """``MINARI_DATASETS_PATH`` set to ``root`` (when given) inside the block: where minari reads and writes."""
    if root is None:
        yield minari_root()
        return
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(Path(root).resolve())
    try:
        yield Path(root)
    finally:
        if old is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def minari_id(name: str) -> str:
    """``name`` as a Minari dataset id: ``(namespace/)name-vN``, ``-v0`` added when it has no version."""
    base, sep, version = name.rpartition("-v")
    return name if sep and base and version.isdigit() else f"{name}-v0"


def _json_safe(value: Any) -> Any:
    """Metadata as JSON types (minari writes metadata.json)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def episode_slices(data: Dataset) -> list[slice]:
    """Rows of every episode: each ends at a row with ``terminals`` or ``timeouts`` set."""
    ends = (data.episode_ends() + 1).tolist()
    return [slice(start, end) for start, end in zip([0, *ends[:-1]], ends)]


def export_minari(data: Dataset, name: str, source: Path | None = None, root: str | Path | None = None) -> MinariExport:
    """Write ``data`` as Minari dataset ``name`` (``-v0`` added without a version) into the local Minari root."""
    minari = import_minari("data export --minari")
    data.validate(str(source or "dataset"))
    dataset_id = minari_id(name)
    slices = episode_slices(data)
    spaces = _spaces(data)
    buffers = _episode_buffers(data, slices)
    meta = data.metadata
    extra = _export_metadata(meta, source)
    description = (
        f"unio4 dataset{f' {source.name}' if source else ''}: {len(data)} transitions, "
        f"{len(slices)} episodes, robot {meta.get('robot', '?')}, source {meta.get('source', '?')}"
    )
    with minari_datasets_path(root) as where:
        if (minari_root() / dataset_id).exists():
            raise FileExistsError(f"minari:{dataset_id}: already in the local Minari root {where}; choose another NAME (or NAME-v1)")
        try:
            with warnings.catch_warnings():  # author, code_permalink, eval_env, env_spec: none for a logged dataset
                warnings.simplefilter("ignore", UserWarning)
                dataset = minari.create_dataset_from_buffers(
                    dataset_id,
                    buffers,
                    observation_space=spaces[0],
                    action_space=spaces[1],
                    algorithm_name=str(meta.get("source") or "unio4"),
                    description=description,
                    jpeg_encoding=False,
                )
                dataset.storage.update_metadata(extra)
        except BaseException:
            shutil.rmtree(minari_root() / dataset_id, ignore_errors=True)  # never half a dataset
            raise
        return MinariExport(dataset_id, minari_root(), len(slices), len(data))


def _spaces(data: Dataset) -> tuple[Any, Any]:
    """Observation and action spaces: unbounded observations; actions within the task's bound, unbounded if one lies outside."""
    from gymnasium.spaces import Box

    obs, actions = data.observations.numpy(), data.actions.numpy()
    bound = dataset_action_bound(data)
    in_bounds = bool(np.all(np.abs(actions) <= bound))
    obs_dtype: Any = obs.dtype  # gymnasium types dtype as a scalar type; a numpy dtype is what it takes too
    act_dtype: Any = actions.dtype
    observation_space = Box(-np.inf, np.inf, obs.shape[1:], obs_dtype)
    high = bound if in_bounds else np.inf
    return observation_space, Box(-high, high, actions.shape[1:], act_dtype)


def _rows_per_observation(values: np.ndarray) -> np.ndarray:
    """Per-transition rows as Minari's per-observation infos: the last row repeated."""
    return np.concatenate([values, values[-1:]])


def _episode_buffers(data: Dataset, slices: list[slice]) -> list[Any]:
    """One minari ``EpisodeBuffer`` per episode; the next observations go along as an info where they are not the following rows."""
    from minari.data_collector import EpisodeBuffer

    obs, next_obs = data.observations.numpy(), data.next_observations.numpy()
    actions, rewards = data.actions.numpy(), data.rewards.numpy()
    terminals, timeouts = data.terminals.numpy().astype(bool), data.timeouts.numpy().astype(bool)
    infos = {k: v.numpy() for k, v in data.infos.items()}
    carry_next = any(not np.array_equal(next_obs[s][:-1], obs[s][1:]) for s in slices)
    buffers = []
    for i, s in enumerate(slices):
        episode_infos = {k: _rows_per_observation(v[s]) for k, v in infos.items()}
        if carry_next:
            episode_infos[MINARI_NEXT] = _rows_per_observation(next_obs[s])
        buffers.append(
            EpisodeBuffer(
                id=i,
                observations=np.concatenate([obs[s], next_obs[s][-1:]]),
                actions=actions[s],
                rewards=rewards[s],
                terminations=terminals[s],
                truncations=timeouts[s],
                infos=episode_infos or None,
            )
        )
    return buffers


def _export_metadata(meta: dict[str, Any], source: Path | None) -> dict[str, Any]:
    """The Minari metadata of an export: robot, task, reward config, source file and hash, the dataset's own metadata."""
    task_config: dict[str, Any] = meta["task_config"] if isinstance(meta.get("task_config"), dict) else {}
    extra: dict[str, Any] = {
        "robot": meta.get("robot"),
        "task": meta.get("task") or meta.get("env"),
        "reward_config": task_config.get("rewards"),
        "source_file": str(source.resolve()) if source else None,
        "source_sha256": sha256_file(source) if source else None,
        MINARI_METADATA: meta,
    }
    return _json_safe({k: v for k, v in extra.items() if v is not None})
