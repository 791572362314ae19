"""Load and verify a policy bundle on the robot: numpy + onnxruntime + PyYAML, never torch.

A bundle is refused, with one line naming what is wrong, when a file's sha256 differs from the
manifest, when the ONNX graph's input/outputs do not match the manifest's observation/action
sizes, or when it was made for another robot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import yaml

MANIFEST_FILE = "manifest.yaml"
SUPPORTED_FORMAT = 1


class BundleError(ValueError):
    """A bundle that must not run."""


@dataclass
class Bundle:
    """A verified bundle: its directory, parsed manifest and onnxruntime session."""

    path: Path
    manifest: dict[str, Any]
    session: ort.InferenceSession

    @property
    def obs_size(self) -> int:
        """Length of the observation the policy takes."""
        return int(self.manifest["observation"]["size"])

    @property
    def act_size(self) -> int:
        """Length of the action the policy returns."""
        return int(self.manifest["action"]["size"])

    def infer(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Action mean and log-std (act_size,) for one observation (obs_size,)."""
        mean, log_std = self.infer_batch(obs.reshape(1, -1))
        return mean[0], log_std[0]

    def infer_batch(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Action means and log-stds (B, act_size) for observations (B, obs_size)."""
        mean, log_std = self.session.run(None, {"obs": obs.astype(np.float32, copy=False)})
        return mean, log_std


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_bundle(path: str | Path, robot: str | None = "go1") -> Bundle:
    """Verify and open the bundle directory ``path`` (``robot=None`` skips the robot check)."""
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(f"{path}: not a policy bundle (no {MANIFEST_FILE})")
    try:
        manifest = yaml.safe_load(manifest_path.read_text())
    except yaml.YAMLError as exc:
        raise BundleError(f"{manifest_path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != SUPPORTED_FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise BundleError(f"{manifest_path}: format must be {SUPPORTED_FORMAT}, got {got!r}")
    if robot is not None and manifest.get("robot") != robot:
        raise BundleError(f"{manifest_path}: robot is '{manifest.get('robot')}', this runtime drives '{robot}'")
    files = manifest.get("files") or {}
    policy_file = manifest["policy"]["file"]
    if policy_file not in files:
        raise BundleError(f"{manifest_path}: files has no sha256 for {policy_file}")
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise BundleError(f"{file}: listed in the manifest but missing")
        actual = sha256_file(file)
        if actual != expected:
            raise BundleError(f"{file}: sha256 {actual[:16]}... does not match the manifest ({str(expected)[:16]}...)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one core, no thread hand-offs: lowest latency for batch 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path / policy_file), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several types for a bad graph
        raise BundleError(f"{path / policy_file}: onnxruntime cannot load it ({type(exc).__name__})") from None
    bundle = Bundle(path, manifest, session)
    _check_signature(bundle)
    return bundle


def _check_signature(bundle: Bundle) -> None:
    inputs, outputs = bundle.session.get_inputs(), bundle.session.get_outputs()
    where = bundle.path / bundle.manifest["policy"]["file"]
    if len(inputs) != 1 or inputs[0].name != "obs":
        raise BundleError(f"{where}: expected one input 'obs', got {[i.name for i in inputs]}")
    if inputs[0].shape[-1] != bundle.obs_size:
        raise BundleError(f"{where}: input 'obs' has {inputs[0].shape[-1]} values, the manifest's observation size is {bundle.obs_size}")
    names = [o.name for o in outputs]
    if names != ["action_mean", "action_log_std"]:
        raise BundleError(f"{where}: expected outputs ['action_mean', 'action_log_std'], got {names}")
    for out in outputs:
        if out.shape[-1] != bundle.act_size:
            raise BundleError(f"{where}: output '{out.name}' has {out.shape[-1]} values, the manifest's action size is {bundle.act_size}")
