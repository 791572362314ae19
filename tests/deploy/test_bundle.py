"""Loading a policy bundle on the robot (deploy/bundle.py, deploy/manifest.py): refusal of tampered,
incomplete and malformed bundles, no torch on the robot's path, and the shipped pretrained bundle."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import copy_bundle, rewrite_manifest
from unio4.deploy.bundle import BundleError, load_bundle
from unio4.sim.config import load_task_config


def test_tampered_and_incomplete_bundles_are_refused(trained: tuple[Path, Path], tmp_path: Path) -> None:
    _, good = trained
    assert load_bundle(good).sha256 == hashlib.sha256((good / "SHA256SUMS").read_bytes()).hexdigest()
    tampered = copy_bundle(good, tmp_path / "tampered")
    with (tampered / "policy.onnx").open("r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BundleError, match=r"policy\.onnx: sha256 .* does not match SHA256SUMS"):
        load_bundle(tampered)

    edited = copy_bundle(good, tmp_path / "edited")  # the manifest is covered by the hash too
    path = edited / "manifest.yaml"
    path.write_text(path.read_text().replace("kp: 20.0", "kp: 2000.0"))
    with pytest.raises(BundleError, match=r"manifest\.yaml: sha256 .* does not match SHA256SUMS"):
        load_bundle(edited)

    extra = copy_bundle(good, tmp_path / "extra")
    (extra / "notes.txt").write_text("hello")
    with pytest.raises(BundleError, match=r"notes\.txt is not listed in SHA256SUMS"):
        load_bundle(extra)

    unsigned = copy_bundle(good, tmp_path / "unsigned")
    (unsigned / "SHA256SUMS").unlink()
    with pytest.raises(BundleError, match="no SHA256SUMS"):
        load_bundle(unsigned)

    missing = copy_bundle(good, tmp_path / "missing")
    (missing / "policy.onnx").unlink()
    with pytest.raises(BundleError, match=r"policy\.onnx: listed in SHA256SUMS but missing"):
        load_bundle(missing)
    with pytest.raises(BundleError, match="not a policy bundle"):
        load_bundle(tmp_path)


MANIFEST_CASES = [
    (lambda m: m.pop("control"), None, "missing required key 'control'"),
    (lambda m: m["control"].__setitem__("kp", [20.0] * 11), None, "control.kp: expected float, got [20.0"),
    (lambda m: m["control"].__setitem__("sdk_dt", 0), None, "control.sdk_dt: expected a value > 0"),
    (lambda m: m.__setitem__("files", ["policy.onnx"]), None, "files: expected a mapping"),
    (lambda m: m["control"].__setitem__("kp", 2000.0), None, "control.kp is 2000.0, the go1 description needs 20.0"),
    (lambda m: m["joints"].__setitem__("upper", [5.0] * 12), None, "joints.upper is [5.0"),
    (lambda m: m["joints"].__setitem__("lower", [-10.0] * 12), None, "joints.lower: expected a value >= -6.3"),
    (lambda m: m["joints"].__setitem__("default_pos", [0.0] * 12), None, "joints.default_pos is"),
    (lambda m: m["joints"].__setitem__("torque_limit", [1.0] * 11), None, "joints.torque_limit: 11 values, action.size is 12"),
    (lambda m: m["control"].__setitem__("damping_kd", float("nan")), None, "control.damping_kd: expected a finite number"),
    (lambda m: m["observation"].__setitem__("size", 45), None, "observation.size is 45, observation.config gives 47"),
    (lambda m: m.__setitem__("robot", "a1"), None, "robot is 'a1', this runtime drives 'go1'"),
    (lambda m: m.__setitem__("format", 1), None, "format is 1, this runtime reads format 2; re-export it"),
    (lambda m: m["files"].__setitem__("checkpoint.pt", "0" * 64), None, "files.checkpoint.pt does not match the file's sha256"),
    (
        None,
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh")),
        "expands to more than",
    ),
    (None, "[1, 2", "not valid YAML"),
]


@pytest.mark.parametrize(("edit", "text", "message"), MANIFEST_CASES)
def test_malformed_or_unsafe_manifests_are_one_line_errors(
    trained: tuple[Path, Path], tmp_path: Path, edit: Callable[[dict[str, Any]], object] | None, text: str | None, message: str
) -> None:
    _, good = trained
    bad = copy_bundle(good, tmp_path / "bad")
    rewrite_manifest(bad, edit or (lambda m: None), text)
    with pytest.raises(BundleError) as err:
        load_bundle(bad)
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert str(bad / "manifest.yaml") in str(err.value)


def test_bundle_loader_does_not_import_torch() -> None:
    code = "import sys, deploy.bundle; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_shipped_pretrained_bundle_loads_and_walks() -> None:
    """pretrained/go1_flat (PPO from scratch, then fine-tuned: its manifest's lineage) still loads and walks here."""
    from unio4.sim.evaluate import evaluate_bundle

    bundle = Path(__file__).resolve().parents[2] / "pretrained" / "go1_flat"
    assert load_bundle(bundle).spec.lineage["samples"] > 0
    result = evaluate_bundle(bundle, load_task_config("go1_flat"), "mujoco", num_envs=8, seconds=5.0, seed=1)
    assert result["falls_per_robot_minute"] == 0.0 and result["lin_vel_error"] < 0.3, result


def test_shipped_rough_bundle_walks_on_level_2() -> None:
    """pretrained/go1_rough (fine-tuned from pretrained/go1_flat on go1_rough_well) walks forward over level 2's tiles."""
    from unio4.sim.evaluate import evaluate_bundle

    bundle = Path(__file__).resolve().parents[2] / "pretrained" / "go1_rough"
    level_2 = ["terrain.min_init_level=2", "terrain.max_init_level=2", "terrain.curriculum=false", "randomization.push_interval_s=100"]
    forward = ["commands.lin_vel_x=[0.5,0.5]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]"]
    task = load_task_config("go1_rough_well", level_2 + forward)
    result = evaluate_bundle(bundle, task, "mujoco", num_envs=8, seconds=5.0, seed=1, full_range=True)  # the task's forward command
    assert result["falls_per_robot_minute"] == 0.0 and result["lin_vel_error"] < 0.3, result


def test_the_robot_loads_a_bundle_with_a_checkpoint_without_torch(walking_bundle: Path) -> None:
    code = f"import sys; from unio4.deploy.bundle import load_bundle; load_bundle({str(walking_bundle)!r})"
    code += "; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
