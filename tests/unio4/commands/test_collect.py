"""``unio4 collect --policy BUNDLE``: logged data from an exported policy in the randomised simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unio4.cli import main
from unio4.deploy.bundle import load_bundle
from unio4.learning.data.dataset import load_dataset


def test_collect_with_a_bundle_uses_its_mean_action(walking_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle.h5"
    assert main(["collect", "--policy", str(walking_bundle), "--num-envs", "4", "--steps", "150", "-o", str(out)]) == 0
    data = load_dataset(out)
    assert len(data) == 600 and data.metadata["source"] == f"sim/bundle:{walking_bundle}"
    bundle = load_bundle(walking_bundle)
    mean, _ = bundle.infer_batch(data.observations[:50].numpy())
    clip = float(bundle.manifest["action"]["clip"])
    assert np.allclose(data.actions[:50].numpy(), np.clip(mean, -clip, clip), atol=1e-5)
    # the cloned trot walks: forward velocity tracking earns reward in most steps
    assert float(data.rewards.mean()) > 0


def test_explore_samples_around_the_mean(walking_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "explore.h5"
    args = ["collect", "--policy", str(walking_bundle), "--explore", "--num-envs", "2", "--steps", "100", "-o", str(out)]
    assert main(args) == 0
    data = load_dataset(out)
    mean, log_std = load_bundle(walking_bundle).infer_batch(data.observations.numpy())
    z = (data.actions.numpy() - mean) / np.exp(log_std)
    assert 0.8 < float(z.std()) < 1.2 and abs(float(z.mean())) < 0.1  # noise of the policy's own std


def test_action_noise_adds_seeded_gaussian_noise(walking_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--action-noise`` explores around any policy: the logged action is the mean plus N(0, std)."""
    out = tmp_path / "noisy.h5"
    args = ["collect", "--policy", str(walking_bundle), "--num-envs", "2", "--steps", "100", "--action-noise", "0.3", "-o", str(out)]
    assert main(args) == 0
    data = load_dataset(out)
    assert data.metadata["source"] == f"sim/bundle:{walking_bundle}+noise:0.3"
    mean, _ = load_bundle(walking_bundle).infer_batch(data.observations.numpy())
    z = (data.actions.numpy() - mean) / 0.3
    assert 0.9 < float(z.std()) < 1.1 and abs(float(z.mean())) < 0.05
    bad = tmp_path / "bad.h5"
    assert main([*args[:-4], "--action-noise=-1", "-o", str(bad)]) == 2
    assert "--action-noise: expected a finite value >= 0, got -1.0" in capsys.readouterr().err
    assert not bad.exists()
    # checked before anything is built: with a task that does not exist either, the noise is what is named
    assert main(["collect", "--task", "no_such_task", "--action-noise=nan", "-o", str(bad)]) == 2
    assert "--action-noise: expected a finite value >= 0, got nan" in capsys.readouterr().err


def test_bundle_for_another_observation_is_refused(walking_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["collect", "--policy", str(walking_bundle), "--num-envs", "2", "--steps", "5", "-o", str(tmp_path / "x.h5")]
    assert main([*args, "--set", "task.observations.history_length=2"]) == 2
    assert "manifest.yaml: observation.size is 47, the task's observation has 94 values" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
