"""Run directories that never mix: one per training run, with what made it.

- Without ``--out`` a run gets a fresh ``runs/<kind>/<YYYYmmdd-HHMMSS>_<name>``.
- A directory that already holds a run is refused unless the run continues it (``--resume``), and
  ``--resume`` of a directory with no checkpoint to continue from is an error, not a fresh start.
- ``run.yaml`` records the command line, the unio4 version, the git commit (and whether the tree
  had uncommitted changes) and every resolved config, so a run can be repeated exactly.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from unio4.configs.loader import to_dict

RUN_FILE = "run.yaml"
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def installed_version() -> str:
    """The unio4 distribution's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unio4")
    except PackageNotFoundError:
        return "unknown"


def git_state(root: Path = SOURCE_ROOT) -> dict[str, Any]:
    """The commit the code came from and whether the tree had changes (or why that is unknown)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "note": "not a git checkout (an installed package)"}
        status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError) as exc:
        return {"commit": None, "note": f"git unavailable ({type(exc).__name__})"}


def prepare_run_dir(run_dir: str | Path | None, kind: str, name: str, resume: bool, checkpoint: str, configs: dict[str, Any]) -> Path:
    """The directory a run writes to, checked and recorded (see the module docstring).

    ``checkpoint`` is the file (relative to the run dir) that ``--resume`` continues from.
    """
    if run_dir is None:
        if resume:
            raise ValueError("--resume needs --out: the run to continue")
        path = Path("runs") / kind / f"{time.strftime('%Y%m%d-%H%M%S')}_{name}"
    else:
        path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path}: a file; --out names a run directory (a new one, or a run's to --resume)")
    if resume:
        if not (path / checkpoint).is_file():
            raise FileNotFoundError(f"{path}: --resume, but there is no {checkpoint} to continue from")
    elif path.exists() and any(path.iterdir()):
        raise FileExistsError(f"{path}: already holds a run; pass --resume to continue it, or choose another --out")
    path.mkdir(parents=True, exist_ok=True)
    record = {
        "argv": sys.argv,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "version": installed_version(),
        "git": git_state(),
        "resumed": resume,
        "configs": {key: to_dict(value) for key, value in configs.items()},
    }
    target = path / RUN_FILE
    if resume and target.is_file():  # keep the first record; add this continuation's
        target = path / f"run.resumed-{time.strftime('%Y%m%d-%H%M%S')}.yaml"
    target.write_text(yaml.safe_dump(record, sort_keys=False))
    return path
