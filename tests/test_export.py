"""Policy bundles: ONNX/torch parity, manifest contract, and refusal of bundles that must not run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from configs.loader import from_dict, to_dict
from deploy.bundle import BundleError, load_bundle
from learning.checkpoint import load_checkpoint
from learning.data.collect import collect
from learning.export import actor_from_checkpoint, export_bundle
from learning.online import OnlineConfig, train_online
from robots.description import RobotDescription
from sim.config import load_task_config
from sim.policies import gait_policy
from sim.task import Go1VelocityTask


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real (briefly trained) Go1 checkpoint and its bundle."""
    root = tmp_path_factory.mktemp("export")
    cfg = load_task_config("go1_flat")
    env = Go1VelocityTask(cfg, 4, seed=0)
    online = from_dict(OnlineConfig, {"iterations": 2, "save_interval": 2, "ppo": {"num_steps": 8}})
    result = train_online(env, online, root / "run", extra_state={"task_config": to_dict(cfg)}, show_progress=False)
    env.close()
    return result.checkpoint, export_bundle(result.checkpoint, root / "bundle")


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


def copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def edit_manifest(bundle: Path, key: str, sub: str, value: object) -> None:
    path = bundle / "manifest.yaml"
    m = yaml.safe_load(path.read_text())
    m[key][sub] = value
    path.write_text(yaml.safe_dump(m))


def test_bad_bundles_are_refused_with_the_reason(trained: tuple[Path, Path], tmp_path: Path) -> None:
    _, good = trained
    tampered = copy_bundle(good, tmp_path / "tampered")
    with (tampered / "policy.onnx").open("r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BundleError, match=r"policy\.onnx: sha256 .* does not match the manifest"):
        load_bundle(tampered)

    wrong_size = copy_bundle(good, tmp_path / "size")
    edit_manifest(wrong_size, "observation", "size", 45)
    with pytest.raises(BundleError, match="input 'obs' has 47 values, the manifest's observation size is 45"):
        load_bundle(wrong_size)

    other_robot = copy_bundle(good, tmp_path / "robot")
    path = other_robot / "manifest.yaml"
    path.write_text(path.read_text().replace("robot: go1", "robot: a1"))
    with pytest.raises(BundleError, match="robot is 'a1', this runtime drives 'go1'"):
        load_bundle(other_robot)

    missing = copy_bundle(good, tmp_path / "missing")
    (missing / "policy.onnx").unlink()
    with pytest.raises(BundleError, match=r"policy\.onnx: listed in the manifest but missing"):
        load_bundle(missing)
    with pytest.raises(BundleError, match="not a policy bundle"):
        load_bundle(tmp_path)


def test_bundle_loader_does_not_import_torch() -> None:
    code = "import sys, deploy.bundle; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
