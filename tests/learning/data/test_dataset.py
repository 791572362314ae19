"""The D4RL-style dataset: HDF5 round trip, validation that names the bad field, crash-safe save."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from unio4.learning.data.dataset import Dataset, DatasetError, load_dataset


def small_dataset(n: int = 50, obs_dim: int = 5, act_dim: int = 2) -> Dataset:
    g = torch.Generator().manual_seed(0)
    timeouts = torch.zeros(n, dtype=torch.bool)
    timeouts[19] = timeouts[-1] = True
    terminals = torch.zeros(n, dtype=torch.bool)
    terminals[34] = True
    return Dataset(
        observations=torch.randn(n, obs_dim, generator=g),
        actions=torch.rand(n, act_dim, generator=g) * 2 - 1,
        rewards=torch.randn(n, generator=g),
        terminals=terminals,
        timeouts=timeouts,
        next_observations=torch.randn(n, obs_dim, generator=g),
        infos={"critic_observations": torch.randn(n, 7, generator=g)},
        metadata={"robot": "go1", "policy_dt": 0.02},
    )


def test_round_trip_and_episodes(tmp_path: Path) -> None:
    data = small_dataset()
    data.save(tmp_path / "d.h5")
    back = load_dataset(tmp_path / "d.h5")
    for key in ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations"):
        assert torch.equal(getattr(back, key), getattr(data, key)), key
    assert torch.equal(back.infos["critic_observations"], data.infos["critic_observations"])
    assert back.metadata == {"robot": "go1", "policy_dt": 0.02}
    assert back.episode_ends().tolist() == [19, 34, 49]
    assert back.episode_starts().tolist() == [0, 20, 35]
    with h5py.File(tmp_path / "d.h5") as f:  # D4RL key names at the root
        assert {"observations", "actions", "rewards", "terminals", "timeouts", "next_observations"} <= set(f.keys())


def test_reads_d4rl_style_file_without_next_observations(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "d4rl.h5", "w") as f:
        f["observations"] = rng.normal(size=(10, 3))
        f["actions"] = rng.normal(size=(10, 2))
        f["rewards"] = rng.normal(size=(10,))
        f["terminals"] = np.zeros(10, dtype=bool)
        f["timeouts"] = np.eye(10, dtype=bool)[-1]
    data = load_dataset(tmp_path / "d4rl.h5")
    assert len(data) == 10 and data.observations.dtype == torch.float32
    assert torch.equal(data.next_observations[3], data.observations[4])


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda f: f.__delitem__("actions"), "missing required key 'actions'"),
        (lambda f: (f.__delitem__("rewards"), f.create_dataset("rewards", data=np.zeros(49))), "has 50 rows, expected 49"),
        (lambda f: f["observations"].__setitem__((7, 2), np.nan), "observations holds NaN/Inf \\(first at row 7\\)"),
        (lambda f: (f.__delitem__("timeouts"), f.create_dataset("timeouts", data=np.zeros(50, dtype=bool))), "last episode never ends"),
        (lambda f: (f.__delitem__("actions"), f.create_dataset("actions", data=np.zeros(50))), "actions must be 2-D"),
    ],
)
def test_bad_dataset_names_the_field(tmp_path: Path, corrupt: object, message: str) -> None:
    path = tmp_path / "bad.h5"
    small_dataset().save(path)
    with h5py.File(path, "a") as f:
        corrupt(f)  # type: ignore[operator]
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_not_hdf5_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DatasetError, match=r"junk\.h5: not a readable HDF5 dataset"):
        load_dataset(tmp_path / "junk.h5")
    with pytest.raises(FileNotFoundError, match=r"nope\.h5"):
        load_dataset(tmp_path / "nope.h5")


def test_invalid_dataset_is_never_written(tmp_path: Path) -> None:
    data = small_dataset()
    data.rewards[3] = float("inf")
    with pytest.raises(DatasetError, match="rewards holds NaN/Inf"):
        data.save(tmp_path / "d.h5")
    assert not list(tmp_path.iterdir())


def test_a_missing_camera_reading_is_nan_data_an_infinite_one_is_refused(tmp_path: Path) -> None:
    """A tracking camera's velocity is NaN at a step with no fresh reading: the dataset keeps it; Inf, or NaN in
    another info, is refused."""
    data = small_dataset()
    data.infos["tracker_lin_vel"] = torch.zeros(len(data), 3)
    data.infos["tracker_lin_vel"][4] = float("nan")
    data.save(tmp_path / "d.h5")
    assert torch.isnan(load_dataset(tmp_path / "d.h5").infos["tracker_lin_vel"][4]).all()
    data.infos["tracker_lin_vel"][5, 1] = float("inf")
    with pytest.raises(DatasetError, match=r"infos/tracker_lin_vel holds NaN/Inf \(first at row 5\)"):
        data.validate()
    data.infos["tracker_lin_vel"][5, 1] = 0.0
    data.infos["critic_observations"][6, 0] = float("nan")
    with pytest.raises(DatasetError, match=r"infos/critic_observations holds NaN/Inf \(first at row 6\)"):
        data.validate()


def write_minari(path: Path, lengths: list[int], last_flag: str = "truncations") -> None:
    """Minari's main_data.hdf5 layout: episode groups, observations with T + 1 rows."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for i, steps in enumerate(lengths):
            g = f.create_group(f"episode_{i}")
            g["observations"] = rng.normal(size=(steps + 1, 3)).astype(np.float32)
            g["actions"] = rng.uniform(-1, 1, size=(steps, 2)).astype(np.float32)
            g["rewards"] = rng.normal(size=steps)
            flag = np.zeros(steps, dtype=bool)
            flag[-1] = True
            g["terminations"] = flag if last_flag == "terminations" else np.zeros(steps, dtype=bool)
            g["truncations"] = flag if last_flag == "truncations" else np.zeros(steps, dtype=bool)


def test_reads_minari_files(tmp_path: Path) -> None:
    write_minari(tmp_path / "main_data.hdf5", [4, 6])
    data = load_dataset(tmp_path / "main_data.hdf5")
    assert len(data) == 10 and data.episode_ends().tolist() == [3, 9]
    assert bool(data.timeouts[3]) and not bool(data.terminals.any())
    with h5py.File(tmp_path / "main_data.hdf5") as f:
        obs = f["episode_1"]["observations"][()]
    assert torch.equal(data.observations[4:], torch.from_numpy(obs[:-1]))
    assert torch.equal(data.next_observations[4:], torch.from_numpy(obs[1:]))


def test_minari_observation_count_mismatch_is_named(tmp_path: Path) -> None:
    path = tmp_path / "main_data.hdf5"
    write_minari(path, [4, 6])
    with h5py.File(path, "a") as f:
        del f["episode_1"]["observations"]
        f["episode_1"]["observations"] = np.zeros((6, 3))
    with pytest.raises(DatasetError, match=r"episode_1/observations has 6 rows, expected 7"):
        load_dataset(path)


def _write_raw(path: Path, **arrays: object) -> Path:
    """An HDF5 file with exactly the given root arrays (or groups, for a dict value)."""
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            if isinstance(value, dict):
                group = f.create_group(key)
                for k, v in value.items():
                    group.create_dataset(k, data=v)
            else:
                f.create_dataset(key, data=value)
    return path


def _d4rl_arrays(n: int) -> dict[str, object]:
    ends = np.zeros(n, bool)
    if n:
        ends[-1] = True
    return {
        "observations": np.zeros((n, 3), np.float32),
        "actions": np.zeros((n, 2), np.float32),
        "rewards": np.zeros(n, np.float32),
        "terminals": np.zeros(n, bool),
        "timeouts": ends,
    }


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({}, "holds no transitions (rewards has 0 rows)"),
        ({"observations": np.array([["a", "b", "c"]] * 4, dtype="S1")}, "observations holds |S1 values; expected numbers"),
        ({"infos": np.zeros(4)}, "infos is a dataset; expected a group of arrays"),
        ({"infos": {"labels": np.array([b"x"] * 4)}}, "infos/labels holds |S1 values; expected numbers"),
        ({"rewards": {"nested": np.zeros(4)}}, "rewards is a group; expected an array"),
    ],
)
def test_hostile_files_are_one_line_errors(tmp_path: Path, arrays: dict[str, object], message: str) -> None:
    n = 0 if not arrays else 4
    path = _write_raw(tmp_path / "bad.h5", **{**_d4rl_arrays(n), **arrays})
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    assert str(path) in str(err.value) and message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_unreadable_array_names_the_file_and_key(tmp_path: Path) -> None:
    """A damaged compressed block: the read error names the file and the key."""
    path = tmp_path / "damaged.h5"
    arrays = _d4rl_arrays(4000)
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value, compression="gzip", chunks=True)
        start = f["observations"].id.get_chunk_info(0).byte_offset  # the first compressed block
    raw = bytearray(path.read_bytes())
    raw[start : start + 16] = b"\xff" * 16
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"damaged\.h5: cannot read observations"):
        load_dataset(path)
