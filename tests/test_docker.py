"""Docker recipes: hadolint-clean, and every pinned install line in sync with requirements.lock."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = sorted((ROOT / "docker").glob("*/Dockerfile"))
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)$")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def known_pins() -> dict[str, str]:
    """requirements.lock plus setup.py's extras (MuJoCo Warp is not in the CPU lock)."""
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if m := PIN.match(line.strip()):
            pins[normalise(m.group(1))] = m.group(2)
    for m in re.finditer(r'"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)"', (ROOT / "setup.py").read_text()):
        pins.setdefault(normalise(m.group(1)), m.group(2))
    return pins


def pip_installs(text: str) -> list[str]:
    """The package arguments of every ``pip install`` in a Dockerfile (continuation lines joined)."""
    joined = re.sub(r"\\\n", " ", text)
    packages = []
    for segment in re.findall(r"pip install ([^&;\n]*)", joined):
        tokens = segment.split()
        skip_next = False
        for token in tokens:
            if skip_next:
                skip_next = False
                continue
            if token in ("-r", "--requirement", "-c", "--constraint"):
                skip_next = True
                continue
            if token.startswith("-") or token in (".", "-e") or "/" in token:
                continue
            packages.append(token)
    return packages


def pin_problems(text: str, pins: dict[str, str]) -> list[str]:
    problems = []
    for package in pip_installs(text):
        m = PIN.match(package)
        if m is None:
            problems.append(f"{package}: not pinned with ==")
            continue
        name, version = normalise(m.group(1)), m.group(2)
        if name not in pins:
            problems.append(f"{package}: not in requirements.lock or setup.py")
        elif pins[name] != version:
            problems.append(f"{package}: the lock pins {pins[name]}")
    return problems


def test_there_are_dockerfiles() -> None:
    assert {p.parent.name for p in DOCKERFILES} >= {"train", "deploy", "isaacgym"}


def test_isaacgym_image_wires_the_worker_interpreter() -> None:
    """The image's worker venv is where the worker lock and Isaac Gym go, and the backend is told to use it;
    the worker lock is a full freeze that keeps numpy below 1.24 (Isaac Gym still uses ``np.float``)."""
    from unio4.sim.backends.isaacgym_backend import PYTHON_VARIABLE

    text = (ROOT / "docker" / "isaacgym" / "Dockerfile").read_text()
    python = re.search(rf"{PYTHON_VARIABLE}=(\S+)/bin/python\b", text)
    assert python is not None, f"the image does not set {PYTHON_VARIABLE}"
    venv = python.group(1)
    assert f"python3.8 -m venv {venv}" in text
    assert f"{venv}/bin/pip install --no-deps -r /opt/isaacgym-requirements.lock" in text
    assert f"{venv}/bin/pip install --no-deps -e /opt/isaacgym/python" in text
    assert "COPY docker/isaacgym/requirements-worker.lock /opt/isaacgym-requirements.lock" in text
    lock = (ROOT / "docker" / "isaacgym" / "requirements-worker.lock").read_text()
    lines = [line for line in lock.splitlines() if line and not line.startswith("#")]
    matches = [PIN.match(line) for line in lines]
    assert all(matches), "every line of the worker lock pins name==version"
    pins = {m.group(1): m.group(2) for m in matches if m}
    assert {"torch", "numpy", "ninja"} <= set(pins)
    assert tuple(int(v) for v in pins["numpy"].split(".")[:2]) < (1, 24)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_pins_match_the_lock(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert pip_installs(text), "no pip install line found"
    assert pin_problems(text, known_pins()) == []


def test_a_drifted_pin_is_caught() -> None:
    text = (ROOT / "docker" / "deploy" / "Dockerfile").read_text()
    drifted = text.replace("onnxruntime==1.32.0", "onnxruntime==1.31.0")
    assert drifted != text
    assert pin_problems(drifted, known_pins()) == ["onnxruntime==1.31.0: the lock pins 1.32.0"]
    assert pin_problems("RUN pip install requests", known_pins()) == ["requests: not pinned with =="]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    config = ROOT / ".hadolint.yaml"
    result = subprocess.run([hadolint, "--config", str(config), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_bad_recipe(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, "--config", str(ROOT / ".hadolint.yaml"), str(bad)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3003" in result.stdout  # the latest tag; cd instead of WORKDIR
