"""`unio4 data export --minari`: HDF5 -> Minari (read by minari itself) -> `--data minari:NAME`, exactly."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from unio4.cli import main
from unio4.learning.data.dataset import ROOT_KEYS, Dataset, load_dataset


@pytest.fixture
def minari_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def assert_same(read: Dataset, original: Dataset) -> None:
    for key in ROOT_KEYS:
        a, b = getattr(read, key), getattr(original, key)
        assert a.dtype == b.dtype and torch.equal(a, b), key


def test_collected_data_round_trips_through_minari(tmp_path: Path, minari_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import minari

    h5 = tmp_path / "gait.h5"
    assert main(["collect", "--num-envs", "3", "--steps", "40", "-o", str(h5)]) == 0
    assert main(["data", "export", str(h5), "--minari", "unio4/go1-gait"]) == 0
    assert "wrote minari:unio4/go1-gait-v0" in capsys.readouterr().out
    original = load_dataset(h5)

    # minari's own reader: episodes, spaces, metadata
    ds = minari.load_dataset("unio4/go1-gait-v0")
    ends = original.episode_ends().tolist()
    assert ds.total_episodes == len(ends) == 3 and ds.total_steps == len(original)
    assert ds.observation_space.shape == (47,) and ds.observation_space.dtype == np.float32
    assert ds.action_space.shape == (12,) and ds.action_space.dtype == np.float32
    bound = original.metadata["task_config"]["action_clip"]
    assert np.all(ds.action_space.high == bound) and np.all(ds.action_space.low == -bound)
    episodes = list(ds.iterate_episodes())
    assert [len(e.rewards) for e in episodes] == [40, 40, 40]
    first = episodes[0]
    np.testing.assert_array_equal(first.observations[:-1], original.observations[:40].numpy())
    np.testing.assert_array_equal(first.observations[-1], original.next_observations[39].numpy())
    assert first.truncations[-1] and not first.truncations[:-1].any() and not first.terminations.any()
    meta = ds.storage.metadata
    assert meta["robot"] == original.metadata["robot"] == "go1"
    assert meta["reward_config"] == original.metadata["task_config"]["rewards"]
    assert meta["source_file"] == str(h5.resolve()) and meta["source_sha256"] == hashlib.sha256(h5.read_bytes()).hexdigest()
    assert meta["unio4_metadata"] == json.loads(json.dumps(original.metadata))

    # unio4's loader on the minari: prefix: the same arrays, infos and metadata
    read = load_dataset("minari:unio4/go1-gait")  # no version: the latest
    assert_same(read, original)
    assert read.infos.keys() == original.infos.keys()
    for key, value in original.infos.items():
        assert torch.equal(read.infos[key], value), key
    assert read.metadata == {**original.metadata, "minari_dataset": "unio4/go1-gait-v0"}
    capsys.readouterr()
    assert main(["data", "stats", "minari:unio4/go1-gait-v0", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["transitions"] == 120 and stats["episodes"] == 3
    bc = tmp_path / "bc.pt"
    assert main(["train", "bc", "--data", "minari:unio4/go1-gait-v0", "--set", "train.steps=5", "-o", str(bc)]) == 0
    assert bc.is_file()


def test_terminals_next_observations_root_and_errors(tmp_path: Path, minari_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import minari

    rng = np.random.default_rng(3)
    n = 9
    obs = torch.from_numpy(rng.normal(size=(n, 5)).astype(np.float32))
    nxt = torch.from_numpy(rng.normal(size=(n, 5)).astype(np.float32))  # not the following rows (noisy observations)
    data = Dataset(
        observations=obs,
        actions=torch.from_numpy(rng.uniform(-3, 3, size=(n, 2)).astype(np.float32)),  # outside the default bound 1
        rewards=torch.from_numpy(rng.normal(size=n).astype(np.float32)),
        terminals=torch.tensor([0, 0, 1, 0, 0, 0, 0, 0, 1], dtype=torch.bool),
        timeouts=torch.tensor([0, 0, 0, 0, 0, 1, 0, 0, 0], dtype=torch.bool),
        next_observations=nxt,
        metadata={"source": "test", "env": "Toy-v0"},
    )
    h5 = tmp_path / "toy.h5"
    data.save(h5)
    other = tmp_path / "other-root"
    assert main(["data", "export", str(h5), "--minari", "toy-v3", "--minari-root", str(other)]) == 0
    assert not minari_root.joinpath("toy-v3").exists() and other.joinpath("toy-v3", "data", "metadata.json").is_file()
    assert main(["data", "export", str(h5), "--minari", "toy-v3", "--minari-root", str(other)]) == 2  # never overwritten
    assert "already in the local Minari root" in capsys.readouterr().err
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(other))
        ds = minari.load_dataset("toy-v3")
        assert [len(e.rewards) for e in ds.iterate_episodes()] == [3, 3, 3]
        assert [bool(e.terminations[-1]) for e in ds.iterate_episodes()] == [True, False, True]
        assert np.isinf(ds.action_space.high).all() and ds.storage.metadata["task"] == "Toy-v0"
        read = load_dataset("minari:toy")
    assert_same(read, data)
    assert read.infos == {}

    capsys.readouterr()
    assert main(["data", "stats", "minari:nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("unio4: error: minari:nope: no such dataset in the local Minari root")
    assert "local datasets: none" in err
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "minari", None)  # as if not installed
        assert main(["train", "offline", "--data", "minari:toy-v3", "-o", str(tmp_path / "run")]) == 2
        assert capsys.readouterr().err == "unio4: error: minari:toy-v3 needs the minari package: pip install 'unio4[minari]'\n"
        assert main(["data", "export", str(h5), "--minari", "x"]) == 2
        assert "data export --minari needs the minari package" in capsys.readouterr().err
