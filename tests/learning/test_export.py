"""Checkpoint -> policy bundle (learning/export.py): ONNX/torch parity, the manifest's spec, ``--force``,
and the weights-only checkpoint a bundle carries for ``--init``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import copy_bundle, rewrite_manifest
from unio4.deploy.bundle import BundleError, load_bundle
from unio4.learning.checkpoint import load_checkpoint
from unio4.learning.data.collect import collect
from unio4.learning.export import actor_from_checkpoint
from unio4.learning.online.runner import OnlineConfig
from unio4.robots.description import RobotDescription
from unio4.sim.config import load_task_config
from unio4.sim.policies import gait_policy
from unio4.sim.task import Go1VelocityTask


def test_onnx_matches_torch_on_random_and_recorded_observations(trained: tuple[Path, Path]) -> None:
    checkpoint, bundle_dir = trained
    actor = actor_from_checkpoint(load_checkpoint(checkpoint), str(checkpoint))
    bundle = load_bundle(bundle_dir)
    rng = np.random.default_rng(0)
    random_obs = (rng.normal(size=(256, bundle.obs_size)) * 3).astype(np.float32)
    task = Go1VelocityTask(load_task_config("go1_flat"), 8, seed=3)
    recorded = collect(task, gait_policy(task), steps=25).observations.numpy()
    task.close()
    for obs in (random_obs, recorded):
        mean, log_std = bundle.session.run(None, {"obs": obs})
        with torch.no_grad():
            t_mean, t_log_std = actor(torch.from_numpy(obs))
        np.testing.assert_allclose(mean, t_mean.numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(log_std, t_log_std.numpy(), atol=1e-5, rtol=0)
    one_mean, _ = bundle.infer(recorded[0])
    np.testing.assert_allclose(one_mean, bundle.session.run(None, {"obs": recorded[:1]})[0][0], atol=1e-7)


def test_manifest_carries_the_spec(trained: tuple[Path, Path], go1: RobotDescription) -> None:
    _, bundle_dir = trained
    m = load_bundle(bundle_dir).manifest
    assert m["robot"] == "go1" and m["observation"]["size"] == 47 and m["action"]["size"] == 12
    assert m["joints"]["order"] == list(go1.joint_names)  # SDK motor order
    assert m["joints"]["default_pos"] == pytest.approx(list(go1.default_joint_pos))
    assert m["action"]["scales"] == pytest.approx(list(go1.action_scales))
    assert (m["control"]["kp"], m["control"]["kd"]) == (go1.control.kp, go1.control.kd)
    assert m["control"]["policy_dt"] == pytest.approx(0.02) and m["control"]["sdk_dt"] == pytest.approx(0.002)
    assert m["observation"]["config"]["clock_frequency"] == 3.0
    assert len(m["lineage"]["checkpoint_sha256"]) == 64 and len(m["files"]["policy.onnx"]) == 64


def test_export_replaces_an_existing_directory_only_with_force(
    walking_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from unio4.cli import main

    bc = str(walking_bundle.parent / "bc.pt")
    existing = copy_bundle(walking_bundle, tmp_path / "bundle")
    sums = (existing / "SHA256SUMS").read_bytes()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "keep.txt").write_text("mine")
    for out in (existing, notes):  # a bundle, or any directory that is not empty
        capsys.readouterr()
        assert main(["export", bc, "-o", str(out)]) == 2
        assert capsys.readouterr().err == f"unio4: error: {out} exists; pass --force to replace it\n"
    assert (existing / "SHA256SUMS").read_bytes() == sums and (notes / "keep.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    assert main(["export", bc, "-o", str(tmp_path / "file"), "--force"]) == 2  # never a file, even with --force
    assert "exists and is not a directory" in capsys.readouterr().err
    run = tmp_path / "run"  # --force never deletes the checkpoint it exports
    run.mkdir()
    shutil.copy(bc, run / "final.pt")
    assert main(["export", str(run / "final.pt"), "-o", str(run), "--force"]) == 2
    assert "lies inside" in capsys.readouterr().err and (run / "final.pt").is_file()

    assert main(["export", bc, "-o", str(notes), "--force"]) == 0
    assert sorted(p.name for p in notes.iterdir()) == ["SHA256SUMS", "checkpoint.pt", "manifest.yaml", "policy.onnx"]
    assert load_bundle(notes).sha256 == load_bundle(walking_bundle).sha256  # the same checkpoint: the same bundle, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "file", "notes", "run"]  # no temporary directory left beside


def test_a_bundle_carries_a_weights_only_checkpoint_that_starts_fine_tuning(
    walking_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from unio4.cli import main
    from unio4.learning.export import BUNDLE_CHECKPOINT_KEYS, init_checkpoint
    from unio4.learning.online.runner import load_init

    bc = walking_bundle.parent / "bc.pt"
    bundle = load_bundle(walking_bundle)  # the robot's loader: checkpoint.pt listed, checked, never read
    listed = (walking_bundle / "SHA256SUMS").read_text()
    assert "  checkpoint.pt\n" in listed and set(bundle.manifest["files"]) == {"policy.onnx", "checkpoint.pt"}
    full, slim = load_checkpoint(bc), load_checkpoint(walking_bundle / "checkpoint.pt")
    assert set(slim) <= {*BUNDLE_CHECKPOINT_KEYS, "network"} and "ensemble" not in slim  # weights, no training state
    assert (walking_bundle / "checkpoint.pt").stat().st_size < bc.stat().st_size
    for key, tensor in full["actor"].items():  # the actor and its observation normaliser, exactly
        torch.testing.assert_close(slim["actor"][key], tensor, rtol=0, atol=0)
    (init_a, cfg_a), (init_b, cfg_b) = load_init(bc, OnlineConfig()), load_init(walking_bundle, OnlineConfig())
    assert cfg_a == cfg_b and init_a.keys() == init_b.keys()

    args = ["train", "online", "--num-envs", "4", "--iterations", "1", "--out", str(tmp_path / "ppo"), "--init", str(walking_bundle)]
    assert main([*args, "--config", "finetune_go1", "--set", "train.ppo.num_steps=8"]) == 0
    assert (tmp_path / "ppo" / "checkpoints" / "final.pt").is_file()

    # A bundle given to export is re-exported from its checkpoint.pt (here in place, with --force).
    again = copy_bundle(walking_bundle, tmp_path / "again")
    capsys.readouterr()
    assert main(["export", str(again), "-o", str(again), "--force"]) == 0
    assert f"{again} is a policy bundle: re-exporting it from {again / 'checkpoint.pt'}" in capsys.readouterr().out
    obs = np.random.default_rng(0).normal(size=(16, bundle.obs_size)).astype(np.float32)
    np.testing.assert_allclose(load_bundle(again).infer_batch(obs)[0], bundle.infer_batch(obs)[0], atol=1e-6)

    tampered = copy_bundle(walking_bundle, tmp_path / "tampered")  # --init reads a bundle's checkpoint only as listed
    with (tampered / "checkpoint.pt").open("ab") as f:
        f.write(b"x")
    with pytest.raises(BundleError, match=r"checkpoint\.pt: sha256 .* does not match SHA256SUMS"):
        init_checkpoint(tampered)


def test_a_bundle_without_a_checkpoint_says_so_wherever_a_checkpoint_is_taken(
    walking_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bundles exported before they carried checkpoint.pt: one line, exit 2, for --init and for export."""
    from unio4.cli import main

    old = copy_bundle(walking_bundle, tmp_path / "old")
    (old / "checkpoint.pt").unlink()
    rewrite_manifest(old, lambda m: m["files"].pop("checkpoint.pt"))
    load_bundle(old)  # still a good bundle for the robot
    message = (
        f"unio4: error: {old} is a policy bundle without a checkpoint (exported before bundles carried one); "
        "pass the checkpoint it was exported from, or re-export it"
    )
    for argv in (
        ["train", "online", "--init", str(old), "--num-envs", "4", "--iterations", "1", "--out", str(tmp_path / "ppo")],
        ["session", "--init", str(old), "--out", str(tmp_path / "session"), "--no-prompt"],
        ["export", str(old), "-o", str(tmp_path / "new")],
    ):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, err
        assert str(walking_bundle.parent / "bc.pt") in err  # the manifest's lineage names the checkpoint
    assert not (tmp_path / "ppo").exists() and not (tmp_path / "session").exists() and not (tmp_path / "new").exists()
