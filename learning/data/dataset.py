"""Offline datasets: D4RL-style transitions in memory and in HDF5.

Root keys follow D4RL (``observations``, ``actions``, ``rewards``, ``terminals``, ``timeouts``,
``next_observations``) so D4RL/Minari-style files and other offline RL tools interoperate. Optional
extra arrays live under ``infos/`` (e.g. privileged critic observations); free-form metadata
(robot, source, observation spec) is stored as attributes of the ``metadata`` group.
Loading validates every field and names the first bad one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

ROOT_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")
# Infos that are NaN at a step with no reading (a tracking camera's, deploy/tracker.py): NaN there is data, Inf is not
MISSING_READINGS = ("tracker_lin_vel", "tracker_ang_vel")


class DatasetError(ValueError):
    """A dataset file or field that does not hold what the format requires."""


@dataclass
class Dataset:
    """N transitions; ``terminals`` end an episode without bootstrap, ``timeouts`` with."""

    observations: torch.Tensor  # (N, obs_dim) float32
    actions: torch.Tensor  # (N, act_dim) float32
    rewards: torch.Tensor  # (N,) float32
    terminals: torch.Tensor  # (N,) bool
    timeouts: torch.Tensor  # (N,) bool
    next_observations: torch.Tensor  # (N, obs_dim) float32
    infos: dict[str, torch.Tensor] = field(default_factory=dict)  # (N, ...) each
    metadata: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def validate(self, where: str = "dataset") -> None:
        """Raise :class:`DatasetError` naming the first field with a bad shape, dtype or value."""
        n = len(self)
        if n == 0:
            raise DatasetError(f"{where}: holds no transitions (rewards has 0 rows)")
        arrays = {k: getattr(self, k) for k in ROOT_KEYS} | {f"infos/{k}": v for k, v in self.infos.items()}
        for name, value in arrays.items():
            if value.shape[0] != n:
                raise DatasetError(f"{where}: {name} has {value.shape[0]} rows, expected {n} (the length of rewards)")
            if not value.dtype.is_floating_point:
                continue
            bad = ~torch.isfinite(value)
            if name.removeprefix("infos/") in MISSING_READINGS:
                bad &= ~torch.isnan(value)
            if bool(bad.any()):
                row = int(bad.reshape(n, -1).any(1).nonzero()[0])
                raise DatasetError(f"{where}: {name} holds NaN/Inf (first at row {row})")
        for name in ("observations", "next_observations", "actions"):
            if getattr(self, name).ndim != 2:
                raise DatasetError(f"{where}: {name} must be 2-D (N, dim), got shape {tuple(getattr(self, name).shape)}")
        if self.next_observations.shape != self.observations.shape:
            shapes = f"{tuple(self.next_observations.shape)} != observations {tuple(self.observations.shape)}"
            raise DatasetError(f"{where}: next_observations shape {shapes}")
        for name in ("rewards", "terminals", "timeouts"):
            if getattr(self, name).ndim != 1:
                raise DatasetError(f"{where}: {name} must be 1-D (N,), got shape {tuple(getattr(self, name).shape)}")
        if n and not bool((self.terminals | self.timeouts)[-1]):
            raise DatasetError(f"{where}: the last episode never ends (terminals/timeouts are both 0 at row {n - 1})")

    def to(self, device: torch.device | str) -> Dataset:
        """The same transitions on ``device`` (metadata shared)."""
        moved = {k: getattr(self, k).to(device) for k in ROOT_KEYS}
        return Dataset(**moved, infos={k: v.to(device) for k, v in self.infos.items()}, metadata=self.metadata)

    def episode_ends(self) -> torch.Tensor:
        """Indices of the last transition of every episode."""
        return torch.nonzero(self.terminals | self.timeouts).squeeze(1)

    def episode_starts(self) -> torch.Tensor:
        """Indices of the first transition of every episode (its observation is a reset state)."""
        after_ends = self.episode_ends() + 1
        return torch.cat([after_ends.new_zeros(1), after_ends[after_ends < len(self)]])

    def value_observations(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What V(s) sees and its next-step counterpart: the privileged critic observations when the
        data has them (simulator logs, for an asymmetric critic that loads into the online PPO critic),
        else the policy observations.
        """
        if self.has_critic_observations():
            return self.infos["critic_observations"], self.infos["next_critic_observations"]
        return self.observations, self.next_observations

    def has_critic_observations(self) -> bool:
        """Whether the privileged critic observations were logged (simulator data)."""
        return "critic_observations" in self.infos and "next_critic_observations" in self.infos

    def on_critic_observations(self) -> Dataset:
        """The same transitions with :meth:`value_observations` as the observations: the state that Q
        and the dynamics model see with ``q_observations: critic``. The simulator's critic observation
        starts with the policy's observation (noise-free), so ``[..., :obs_dim]`` of it is what a policy reads.
        """
        obs, next_obs = self.value_observations()
        if obs.shape[1] < self.observations.shape[1]:
            raise DatasetError(
                f"infos/critic_observations: {obs.shape[1]} values per row, fewer than the {self.observations.shape[1]} of "
                "the observations it must start with"
            )
        return replace(self, observations=obs, next_observations=next_obs)

    def observation_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of the observations (the frozen normaliser of Uni-O4)."""
        return self.observations.mean(0), self.observations.var(0, unbiased=False)

    def save(self, path: Path) -> None:
        """Write HDF5 atomically (temp file + rename), so a crash never leaves half a dataset."""
        self.validate(str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with h5py.File(tmp, "w") as f:
            for key in ROOT_KEYS:
                f.create_dataset(key, data=getattr(self, key).numpy(), compression="gzip", compression_opts=1)
            for key, value in self.infos.items():
                f.create_dataset(f"infos/{key}", data=value.numpy(), compression="gzip", compression_opts=1)
            meta = f.create_group("metadata")
            for key, value in self.metadata.items():
                meta.attrs[key] = json.dumps(value)
        tmp.replace(path)


def episode_columns(observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminal: bool) -> dict[str, np.ndarray]:
    """The root columns of one logged episode, which ends in a terminal (a fall) or else a time-out.

    The last step's next observation repeats its own (the log holds nothing after it; a terminal
    never bootstraps from it and a time-out's value comes from the critic at that state).
    """
    obs = np.asarray(observations, dtype=np.float32)
    ends = np.zeros(len(obs), dtype=bool)
    ends[-1] = True
    return {
        "observations": obs,
        "actions": np.asarray(actions, dtype=np.float32),
        "rewards": np.asarray(rewards, dtype=np.float32),
        "terminals": ends & terminal,
        "timeouts": ends & (not terminal),
        "next_observations": np.concatenate([obs[1:], obs[-1:]]),
    }


def concatenate_episodes(episodes: list[dict[str, np.ndarray]], metadata: dict[str, Any], where: str) -> Dataset:
    """One validated dataset from per-episode columns: the root keys, and everything else under ``infos``."""
    arrays = {k: np.concatenate([np.asarray(e[k]) for e in episodes]) for k in episodes[0]}
    dataset = Dataset(
        **{k: torch.from_numpy(arrays[k]) for k in ROOT_KEYS},
        infos={k: torch.from_numpy(v) for k, v in arrays.items() if k not in ROOT_KEYS},
        metadata=metadata,
    )
    dataset.validate(where)
    return dataset


def dataset_action_bound(dataset: Dataset) -> float:
    """The policy's action bound: the Go1 task's ``action_clip``, else the box of a [-1, 1] task."""
    task = dataset.metadata.get("task_config") or {}
    if "action_clip" in task:
        return float(task["action_clip"])
    return float(dataset.metadata.get("action_bound", 1.0))


def load_dataset(path: str | Path) -> Dataset:
    """Read a dataset written by :meth:`Dataset.save` or a D4RL/Minari-style HDF5 file.

    ``minari:NAME`` reads dataset NAME of the local Minari root (``MINARI_DATASETS_PATH``) through minari.
    """
    if isinstance(path, str) and path.startswith(MINARI_PREFIX):
        return load_minari_dataset(path.removeprefix(MINARI_PREFIX))
    path = Path(path)
    if path.is_dir():
        what = "a policy bundle (a directory with manifest.yaml)" if (path / "manifest.yaml").is_file() else "a directory"
        raise DatasetError(f"{path}: {what}, not a dataset; give an HDF5 file (unio4 collect, data pack, data generate)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dataset file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable HDF5 dataset ({_first_line(exc)})") from None
    try:
        with f:
            return _load_open(f, path)
    except (OSError, RuntimeError, KeyError) as exc:  # h5py's errors on a damaged file: a broken heap, link or header
        raise DatasetError(f"{path}: not a readable HDF5 dataset ({_first_line(exc)})") from None


def _load_open(f: h5py.File, path: Path) -> Dataset:
    """:func:`load_dataset` of an open file."""
    if any(k.startswith("episode_") for k in f.keys()):
        return _load_minari(f, path)
    arrays: dict[str, np.ndarray] = {}
    for key in ROOT_KEYS:
        if key not in f:
            if key == "next_observations":
                continue
            raise DatasetError(f"{path}: missing required key '{key}'")
        arrays[key] = _read_array(f, key, path)
    infos: dict[str, torch.Tensor] = {}
    if "infos" in f:
        if not isinstance(f["infos"], h5py.Group):
            raise DatasetError(f"{path}: infos is a dataset; expected a group of arrays (infos/<name>)")
        infos = {k: torch.from_numpy(_read_array(f, f"infos/{k}", path)) for k in f["infos"]}
    metadata = {k: _attr(v) for k, v in f["metadata"].attrs.items()} if isinstance(f.get("metadata"), h5py.Group) else {}
    if "next_observations" not in arrays:  # old D4RL files: the next row, except across episode ends
        arrays["next_observations"] = np.concatenate([arrays["observations"][1:], arrays["observations"][-1:]])
    data = Dataset(
        observations=torch.as_tensor(arrays["observations"], dtype=torch.float32),
        actions=torch.as_tensor(arrays["actions"], dtype=torch.float32),
        rewards=torch.as_tensor(arrays["rewards"], dtype=torch.float32).reshape(-1),
        terminals=torch.as_tensor(arrays["terminals"]).reshape(-1).bool(),
        timeouts=torch.as_tensor(arrays["timeouts"]).reshape(-1).bool(),
        next_observations=torch.as_tensor(arrays["next_observations"], dtype=torch.float32),
        infos=infos,
        metadata=metadata,
    )
    data.validate(str(path))
    return data


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_array(f: h5py.File, key: str, path: Path) -> np.ndarray:
    """The numeric array at ``key``, with a one-line error naming the file and key otherwise."""
    node = f[key]
    if not isinstance(node, h5py.Dataset):
        raise DatasetError(f"{path}: {key} is a group; expected an array")
    if node.dtype.kind not in "biuf":
        raise DatasetError(f"{path}: {key} holds {node.dtype} values; expected numbers (bool, int or float)")
    try:
        return np.asarray(node[()])
    except (OSError, ValueError, RuntimeError) as exc:  # h5py's read errors: a damaged file or filter
        raise DatasetError(f"{path}: cannot read {key} ({_first_line(exc)})") from None


MINARI_KEYS = ("observations", "actions", "rewards", "terminations", "truncations")


def _load_minari(f: h5py.File, path: Path) -> Dataset:
    """Minari's layout: one ``episode_<id>`` group per episode, observations with T + 1 rows."""
    names = [k for k in f.keys() if k.startswith("episode_")]
    if bad := [k for k in names if not k.split("_", 1)[1].isdigit()]:
        raise DatasetError(f"{path}: {bad[0]}: expected episode_<number>")
    names.sort(key=lambda k: int(k.split("_")[1]))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ROOT_KEYS}
    for name in names:
        group = f[name]
        for key in MINARI_KEYS:
            if key not in group:
                raise DatasetError(f"{path}: {name}/{key} is missing")
            if not isinstance(group[key], h5py.Dataset):
                raise DatasetError(f"{path}: {name}/{key} is a group (dict spaces are not supported; flatten them first)")
        obs, actions = _read_array(f, f"{name}/observations", path), _read_array(f, f"{name}/actions", path)
        steps = len(actions)
        if len(obs) != steps + 1:
            raise DatasetError(f"{path}: {name}/observations has {len(obs)} rows, expected {steps + 1} (actions + 1)")
        terminals = _read_array(f, f"{name}/terminations", path).astype(bool).reshape(-1)
        timeouts = _read_array(f, f"{name}/truncations", path).astype(bool).reshape(-1)
        if steps and not (terminals[-1] or timeouts[-1]):
            timeouts[-1] = True  # a recorded episode ends at its last step
        for key, value in (
            ("observations", obs[:-1]),
            ("next_observations", obs[1:]),
            ("actions", actions.reshape(steps, -1)),
            ("rewards", _read_array(f, f"{name}/rewards", path).reshape(-1)),
            ("terminals", terminals),
            ("timeouts", timeouts),
        ):
            parts[key].append(np.asarray(value))
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    data = Dataset(
        observations=torch.as_tensor(arrays["observations"], dtype=torch.float32).reshape(len(arrays["rewards"]), -1),
        actions=torch.as_tensor(arrays["actions"], dtype=torch.float32),
        rewards=torch.as_tensor(arrays["rewards"], dtype=torch.float32),
        terminals=torch.as_tensor(arrays["terminals"]),
        timeouts=torch.as_tensor(arrays["timeouts"]),
        next_observations=torch.as_tensor(arrays["next_observations"], dtype=torch.float32).reshape(len(arrays["rewards"]), -1),
        metadata={"source": "minari", "episodes": len(names)},
    )
    data.validate(str(path))
    return data


MINARI_PREFIX = "minari:"
MINARI_HINT = "pip install 'unio4[minari]'"
MINARI_METADATA = "unio4_metadata"  # the Minari metadata key that holds the dataset's own metadata (unio4 data export)
MINARI_NEXT = "next_observations"  # an info of unio4's exports whose next observations are not the following rows


def import_minari(what: str) -> Any:
    """The minari module, or an ImportError naming ``what`` needs it and how to install it."""
    try:
        import minari
    except ImportError:
        raise ImportError(f"{what} needs the minari package: {MINARI_HINT}") from None
    return minari


def minari_local_ids(minari: Any) -> list[str]:
    """The ids of the datasets in the local Minari root."""
    import warnings

    with warnings.catch_warnings():  # a misconfigured dataset folder: minari warns and skips it
        warnings.simplefilter("ignore")
        return sorted(minari.list_local_datasets())


def minari_root() -> Path:
    """The local Minari root: ``MINARI_DATASETS_PATH``, else ~/.minari/datasets (as minari reads it)."""
    import os

    return Path(os.environ.get("MINARI_DATASETS_PATH") or Path.home() / ".minari" / "datasets")


def _minari_version(dataset_id: str) -> tuple[str, int] | None:
    name, sep, version = dataset_id.rpartition("-v")
    return (name, int(version)) if sep and version.isdigit() else None


def load_minari_dataset(name: str) -> Dataset:
    """Dataset ``name`` of the local Minari root (without ``-vN``: its latest version) as a :class:`Dataset`.

    Observations have T + 1 rows per episode in Minari: ``observations``/``next_observations`` are
    rows 0..T-1 and 1..T (or the ``next_observations`` info of a unio4 export); ``terminals`` and
    ``timeouts`` are Minari's terminations and truncations. The infos of a unio4 export (one row per
    observation, the last repeated) come back under ``infos`` and its metadata as the metadata.
    """
    where = f"{MINARI_PREFIX}{name}"
    minari = import_minari(where)
    dataset_id = _minari_dataset_id(minari, name, where)
    from gymnasium.spaces import Box

    source = minari.load_dataset(dataset_id)
    if not isinstance(source.observation_space, Box) or not isinstance(source.action_space, Box):
        raise DatasetError(f"{where}: observation and action spaces must be Box (dict/tuple spaces are not supported)")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ROOT_KEYS}
    infos: dict[str, list[np.ndarray]] = {}
    episodes = 0
    for episode in source.iterate_episodes():
        _add_minari_episode(episode, parts, infos)
        episodes += 1
    if not episodes:
        raise DatasetError(f"{where}: holds no episodes")
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    meta = source.storage.metadata
    metadata = dict(meta.get(MINARI_METADATA) or {"source": "minari", "episodes": episodes})
    data = Dataset(
        observations=torch.as_tensor(arrays["observations"], dtype=torch.float32),
        actions=torch.as_tensor(arrays["actions"], dtype=torch.float32),
        rewards=torch.as_tensor(arrays["rewards"], dtype=torch.float32),
        terminals=torch.as_tensor(arrays["terminals"]),
        timeouts=torch.as_tensor(arrays["timeouts"]),
        next_observations=torch.as_tensor(arrays["next_observations"], dtype=torch.float32),
        infos={k: torch.from_numpy(np.concatenate(v)) for k, v in infos.items() if len(v) == episodes},
        metadata={**metadata, "minari_dataset": dataset_id},
    )
    data.validate(where)
    return data


def _minari_dataset_id(minari: Any, name: str, where: str) -> str:
    """The local dataset id ``name`` names: itself, or without a version the latest ``name-vN``."""
    local = minari_local_ids(minari)
    dataset_id = name if name in local else None
    if dataset_id is None and _minari_version(name) is None:
        versions = [(v[1], i) for i in local if (v := _minari_version(i)) is not None and v[0] == name]
        dataset_id = max(versions)[1] if versions else None
    if dataset_id is None:
        raise DatasetError(
            f"{where}: no such dataset in the local Minari root {minari_root()}; "
            f"local datasets: {', '.join(local) or 'none'} (unio4 data export DATA.h5 --minari NAME writes one)"
        )
    return dataset_id


def _add_minari_episode(episode: Any, parts: dict[str, list[np.ndarray]], infos: dict[str, list[np.ndarray]]) -> None:
    """Append one Minari episode's transitions to ``parts`` and its per-observation infos to ``infos``."""
    steps = len(episode.rewards)
    obs = np.asarray(episode.observations).reshape(steps + 1, -1)
    extra = dict(episode.infos or {})
    next_obs = np.asarray(extra.pop(MINARI_NEXT)).reshape(steps + 1, -1)[:-1] if MINARI_NEXT in extra else obs[1:]
    terminals = np.asarray(episode.terminations, dtype=bool).reshape(-1).copy()
    timeouts = np.asarray(episode.truncations, dtype=bool).reshape(-1).copy()
    if steps and not (terminals[-1] or timeouts[-1]):
        timeouts[-1] = True  # a recorded episode ends at its last step
    for key, value in (
        ("observations", obs[:-1]),
        ("next_observations", next_obs),
        ("actions", np.asarray(episode.actions).reshape(steps, -1)),
        ("rewards", np.asarray(episode.rewards).reshape(-1)),
        ("terminals", terminals),
        ("timeouts", timeouts),
    ):
        parts[key].append(value)
    for key, value in extra.items():
        if isinstance(value, np.ndarray) and len(value) == steps + 1:  # per-observation infos; others are dropped
            infos.setdefault(key, []).append(value[:-1])


def _attr(value: Any) -> Any:
    try:
        return json.loads(value)
    except (TypeError, json.JSONDecodeError):
        return value.item() if isinstance(value, np.generic) else value
