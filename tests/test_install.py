"""A plain, non-editable install works: the wheel carries its presets, and the robot install is slim.

The wheel is built from this checkout and installed with ``--no-deps`` into fresh virtual
environments whose only other packages come from a ``.pth`` file: the whole test environment for
the workstation install, and a folder holding just the robot install's packages (numpy, PyYAML,
onnxruntime and its own dependencies, the SDK, pyserial) for the robot. Every command runs from a
folder outside the checkout, so nothing can be found in the repository by accident.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from unio4.sim.emulator import spawn

REPO = Path(__file__).resolve().parent.parent
SITE = Path(sysconfig.get_paths()["purelib"])
ROBOT_PACKAGES = (
    "numpy",
    "numpy.libs",
    "yaml",
    "_yaml",
    "onnxruntime",
    "flatbuffers",
    "packaging",
    "google",
    "serial",
    "unitree_legged_sdk",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of a copy of the sources (a build in the checkout would leave build/ behind)."""
    out = tmp_path_factory.mktemp("wheel")
    src = out / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("configs", "robots", "deploy", "sim", "learning", "unio4"):
        shutil.copytree(REPO / name, src / name, ignore=ignore, symlinks=True)  # unio4/<layer> stay links, as in the checkout
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)]
    subprocess.run(cmd, check=True, capture_output=True, cwd=out)
    return next(out.glob("unio4-*.whl"))


def clean_env() -> dict[str, str]:
    """This environment without what would make the checkout importable."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def make_venv(root: Path, wheel: Path, site_dirs: list[Path]) -> Path:
    """A venv with the wheel installed and ``site_dirs`` (and nothing else) importable; returns its bin/."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)], check=True)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    )
    (Path(purelib.stdout.strip()) / "deps.pth").write_text("".join(f"{d}\n" for d in site_dirs))
    return root / "bin"


def run(bin_dir: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / "unio4"), *argv], capture_output=True, text=True, cwd=cwd, env=clean_env(), timeout=300)


def test_wheel_holds_presets_and_declares_a_slim_base(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for preset in ("task/go1_flat.yaml", "train/ppo_go1.yaml", "deploy/go1.yaml", "session/go1.yaml"):
        assert f"unio4/configs/{preset}" in names
    assert "unio4/robots/go1/go1.yaml" in names
    # one top-level name: nothing called sim, deploy, configs, ... lands in site-packages
    assert {name.split("/")[0] for name in names} == {"unio4", next(n for n in names if ".dist-info/" in n).split("/")[0]}
    assert {"unio4/sim/task.py", "unio4/deploy/runtime.py", "unio4/learning/online/runner.py"} <= set(names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    base = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert sorted(r.split("==")[0] for r in base) == ["PyYAML", "numpy", "onnxruntime", "pyserial", "unitree-legged-sdk"]
    assert 'Requires-Dist: torch==2.13.0; extra == "train"' in metadata


def test_workstation_install_finds_its_presets(wheel: Path, walking_bundle: Path, tmp_path: Path) -> None:
    bin_dir = make_venv(tmp_path / "venv", wheel, [SITE])
    code = "import unio4.configs.loader as c; print(c.CONFIG_DIR)"
    where = subprocess.run([str(bin_dir / "python"), "-c", code], capture_output=True, text=True, cwd=tmp_path, env=clean_env())
    assert where.stdout.strip().startswith(str(tmp_path / "venv")), where
    gait = run(bin_dir, "sim", "gait", "--num-envs", "2", "--seconds", "1", cwd=tmp_path)
    assert gait.returncode == 0 and "trot at vx=0.8" in gait.stdout, gait.stderr
    exported = run(bin_dir, "export", str(walking_bundle.parent / "bc.pt"), "-o", str(tmp_path / "bundle"), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "bundle" / "SHA256SUMS").is_file()


def test_robot_install_deploys_with_only_its_packages(wheel: Path, walking_bundle: Path, tmp_path: Path) -> None:
    """The deploy path runs against the emulator with numpy, PyYAML, onnxruntime, the SDK and pyserial only."""
    slim = tmp_path / "robot-site"
    slim.mkdir()
    for found in SITE.iterdir():  # each robot package, its .libs folder and its metadata
        stem = found.name.split("-")[0].split(".")[0].lower()
        if stem in ROBOT_PACKAGES or stem in ("pyyaml", "pyserial", "protobuf"):
            (slim / found.name).symlink_to(found)
    bin_dir = make_venv(tmp_path / "venv", wheel, [slim])
    no_torch = subprocess.run(
        [str(bin_dir / "python"), "-c", "import torch"], capture_output=True, text=True, cwd=tmp_path, env=clean_env()
    )
    assert no_torch.returncode != 0  # really slim: the workstation's packages are out of reach
    emulator, port = spawn(["--lockstep"])
    try:
        argv = [
            "deploy",
            str(walking_bundle),
            "--robot",
            f"127.0.0.1:{port}",
            "--local-port",
            "0",
            "--duration",
            "1",
            "--command",
            "0.3,0,0",
        ]
        result = run(bin_dir, *argv, "--set", "runtime.startup_s=0.5", "--set", "runtime.damping_hold_s=0.2", cwd=tmp_path)
    finally:
        emulator.send_signal(signal.SIGINT)
        emulator.wait(timeout=20)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "50 policy steps; ended by duration" in result.stdout
