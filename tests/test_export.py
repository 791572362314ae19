"""Policy bundles: ONNX/torch parity, manifest contract, and refusal of bundles that must not run."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from unio4.configs.loader import from_dict, to_dict
from unio4.deploy.bundle import BundleError, load_bundle, write_sums
from unio4.learning.checkpoint import load_checkpoint, save_checkpoint
from unio4.learning.data.collect import collect
from unio4.learning.export import actor_from_checkpoint, export_bundle
from unio4.learning.online.runner import OnlineConfig, train_online
from unio4.robots.description import RobotDescription
from unio4.sim.config import load_task_config
from unio4.sim.policies import gait_policy
from unio4.sim.task import Go1VelocityTask


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


def rewrite_manifest(bundle: Path, edit: Callable[[dict[str, Any]], object], text: str | None = None) -> None:
    """Edit the manifest (or replace its text) and re-sign SHA256SUMS, so the content checks are what refuse it."""
    path = bundle / "manifest.yaml"
    if text is None:
        m = yaml.safe_load(path.read_text())
        edit(m)
        text = yaml.safe_dump(m)
    path.write_text(text)
    write_sums(bundle)


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


def test_checkpoints_never_run_code(tmp_path: Path) -> None:
    """A pickle that would run code on load is refused by every reader of checkpoints (export, --init, --resume)."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    torch.save({"actor": {}, "payload": Evil()}, evil)
    result = subprocess.run(
        [sys.executable, "-m", "unio4.cli", "export", str(evil), "-o", str(tmp_path / "b")], capture_output=True, text=True
    )
    assert result.returncode == 2 and not marker.exists()
    assert (
        result.stderr.startswith(f"unio4: error: {evil}: not a readable unio4 checkpoint") and len(result.stderr.strip().splitlines()) == 1
    )
    with pytest.raises(ValueError, match="not a readable unio4 checkpoint"):
        load_checkpoint(evil)
    assert not marker.exists()
    with pytest.raises(TypeError, match=r"checkpoint.payload: a .*Evil; checkpoints hold tensors and plain data only"):
        save_checkpoint(tmp_path / "x.pt", {"actor": {}, "payload": Evil()})


def test_bundle_loader_does_not_import_torch() -> None:
    code = "import sys, deploy.bundle; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_shipped_pretrained_bundle_loads_and_walks() -> None:
    """pretrained/go1_flat (PPO from scratch, see its manifest's lineage) still loads and walks here."""
    from unio4.sim.evaluate import evaluate_bundle

    bundle = Path(__file__).resolve().parents[1] / "pretrained" / "go1_flat"
    assert load_bundle(bundle).spec.lineage["samples"] > 0
    result = evaluate_bundle(bundle, load_task_config("go1_flat"), "mujoco", num_envs=8, seconds=5.0, seed=1)
    assert result["falls_per_robot_minute"] == 0.0 and result["lin_vel_error"] < 0.3, result


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


def test_the_robot_loads_a_bundle_with_a_checkpoint_without_torch(walking_bundle: Path) -> None:
    code = f"import sys; from unio4.deploy.bundle import load_bundle; load_bundle({str(walking_bundle)!r})"
    code += "; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def lineage_commands(value: object) -> list[str]:
    """Every ``unio4 ...`` string of a manifest's lineage (nested mappings and lists included)."""
    if isinstance(value, str):
        return [value] if value.startswith("unio4 ") else []
    if isinstance(value, dict):
        return [c for item in value.values() for c in lineage_commands(item)]
    if isinstance(value, list):
        return [c for item in value for c in lineage_commands(item)]
    return []


def test_lineage_commands_in_manifests_are_runnable_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    """Each command a shipped bundle's lineage records parses with today's CLI (a trailing "(note)" aside)."""
    from unio4.cli import build_parser

    root = Path(__file__).resolve().parents[1]
    manifests = sorted(root.glob("pretrained/*/manifest.yaml"))
    assert manifests
    recorded = [(str(m.relative_to(root)), c) for m in manifests for c in lineage_commands(yaml.safe_load(m.read_text()).get("lineage"))]
    planned = [  # how pretrained/go1_flat is (re)made
        ("plan", "unio4 train online --seed 0 --out RUN"),
        ("plan", "unio4 export RUN/checkpoints/final.pt -o pretrained/go1_flat --force"),
    ]
    refused = []
    for where, command in [*planned, *recorded]:
        words = shlex.split(re.sub(r"\s*\([^()]*\)\s*$", "", command))
        assert words[0] == "unio4"
        try:
            build_parser().parse_args(words[1:])
        except SystemExit:
            error = capsys.readouterr().err.strip().splitlines()
            refused.append(f"{where}: {command!r}: {error[-1] if error else 'refused'}")
    assert not refused, "\n".join(refused)
