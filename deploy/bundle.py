"""Load and verify a policy bundle on the robot: numpy + onnxruntime + PyYAML, never torch.

A bundle directory holds ``policy.onnx``, ``manifest.yaml`` and ``SHA256SUMS`` (``sha256sum``'s
format) listing every other file, the manifest included; bundles exported since they carry one also
hold ``checkpoint.pt`` (for ``--init``, read by the training side only: its sha256 is checked here,
its content never). A bundle is refused, with one line naming
what is wrong, when

- ``SHA256SUMS`` is missing, malformed, misses a file of the directory or lists one that is not there;
- any file's sha256 differs from its line;
- the manifest is not valid YAML, lacks a field, has a wrong type, a non-finite or out-of-range
  value, or per-joint lists of the wrong length (:mod:`unio4.deploy.manifest`);
- its gains, limits, default pose, action scales or rates disagree with the robot description;
- the ONNX graph's input and outputs do not match the manifest's observation and action sizes.

The bundle's identity (:attr:`Bundle.sha256`) is the sha256 of its ``SHA256SUMS``: it changes when
any file changes, the manifest included, and it is what ``unio4 flash`` compares and what a robot
log records.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import yaml

from unio4.configs.loader import ConfigError, parse_yaml
from unio4.deploy.manifest import SUPPORTED_FORMAT, Manifest, check_against_robot, parse_manifest
from unio4.robots.description import load_robot

MANIFEST_FILE = "manifest.yaml"
SUMS_FILE = "SHA256SUMS"
_SUM_LINE = re.compile(r"^([0-9a-f]{64})  ([A-Za-z0-9._-]+)$")

__all__ = [
    "MANIFEST_FILE",
    "SUMS_FILE",
    "SUPPORTED_FORMAT",
    "Bundle",
    "BundleError",
    "load_bundle",
    "read_manifest",
    "sha256_file",
    "write_sums",
]


class BundleError(ValueError):
    """A bundle that must not run."""


@dataclass
class Bundle:
    """A verified bundle: its directory, manifest (raw and typed), identity and onnxruntime session."""

    path: Path
    manifest: dict[str, Any]
    spec: Manifest
    sha256: str
    session: ort.InferenceSession

    @property
    def obs_size(self) -> int:
        """Length of the observation the policy takes."""
        return self.spec.observation.size

    @property
    def act_size(self) -> int:
        """Length of the action the policy returns."""
        return self.spec.action.size

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


def write_sums(bundle_dir: Path) -> str:
    """Write ``SHA256SUMS`` over every file of ``bundle_dir``; returns the bundle's identity."""
    files = sorted(p for p in bundle_dir.iterdir() if p.is_file() and p.name != SUMS_FILE)
    text = "".join(f"{sha256_file(p)}  {p.name}\n" for p in files)
    (bundle_dir / SUMS_FILE).write_text(text)
    return hashlib.sha256(text.encode()).hexdigest()


def verify_sums(path: Path) -> tuple[str, dict[str, str]]:
    """Check ``SHA256SUMS`` against the directory; returns the bundle's identity and each file's sha256."""
    sums = path / SUMS_FILE
    if not sums.is_file():
        raise BundleError(f"{path}: no {SUMS_FILE}; bundles of this version list every file's sha256 there (re-export with unio4 export)")
    raw = sums.read_bytes()
    listed: dict[str, str] = {}
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        match = _SUM_LINE.match(line)
        if match is None:
            raise BundleError(f"{sums}: line {number} is not '<sha256>  <file name>'")
        listed[match.group(2)] = match.group(1)
    present = {p.name for p in path.iterdir() if p.name != SUMS_FILE}
    if extra := sorted(present - set(listed)):
        raise BundleError(f"{path}: {extra[0]} is not listed in {SUMS_FILE} (a bundle holds exactly the files it lists)")
    for name, expected in listed.items():
        file = path / name
        if not file.is_file():
            raise BundleError(f"{file}: listed in {SUMS_FILE} but missing")
        actual = sha256_file(file)
        if actual != expected:
            raise BundleError(f"{file}: sha256 {actual[:16]}... does not match {SUMS_FILE} ({expected[:16]}...)")
    if MANIFEST_FILE not in listed:
        raise BundleError(f"{sums}: does not list {MANIFEST_FILE}")
    return hashlib.sha256(raw).hexdigest(), listed


def read_manifest(path: str | Path, robot: str | None = "go1") -> tuple[dict[str, Any], Manifest, str]:
    """The verified bundle's manifest (raw and typed) and identity, without loading its ONNX graph.

    ``robot`` is the robot this runtime drives; ``None`` takes the manifest's robot (its description
    is still the authority the manifest is checked against).
    """
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(f"{path}: not a policy bundle (no {MANIFEST_FILE})")
    identity, listed = verify_sums(path)
    try:
        raw = parse_yaml(manifest_path.read_text())
    except yaml.YAMLError as exc:
        raise BundleError(f"{manifest_path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    try:
        spec = parse_manifest(raw, str(manifest_path))
        if robot is not None and spec.robot != robot:
            raise BundleError(f"{manifest_path}: robot is '{spec.robot}', this runtime drives '{robot}'")
        try:
            description = load_robot(spec.robot)
        except ConfigError as exc:
            raise BundleError(f"{manifest_path}: robot {spec.robot!r} has no usable description ({exc})") from None
        check_against_robot(spec, description, str(manifest_path))
    except ConfigError as exc:
        raise BundleError(str(exc)) from None
    for name, digest in spec.files.items():  # policy.onnx, and checkpoint.pt (torch's; never read here)
        if digest != listed.get(name):
            raise BundleError(f"{manifest_path}: files.{name} does not match the file's sha256")
    return raw, spec, identity


def load_bundle(path: str | Path, robot: str | None = "go1") -> Bundle:
    """Verify and open the bundle directory ``path`` (see :func:`read_manifest` for ``robot``)."""
    path = Path(path)
    raw, spec, identity = read_manifest(path, robot)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one core, no thread hand-offs: lowest latency for batch 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path / spec.policy.file), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several types for a bad graph
        raise BundleError(f"{path / spec.policy.file}: onnxruntime cannot load it ({type(exc).__name__})") from None
    bundle = Bundle(path, raw, spec, identity, session)
    _check_signature(bundle)
    return bundle


def _check_signature(bundle: Bundle) -> None:
    inputs, outputs = bundle.session.get_inputs(), bundle.session.get_outputs()
    where = bundle.path / bundle.spec.policy.file
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
