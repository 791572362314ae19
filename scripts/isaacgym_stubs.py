"""Make the ``isaacgym-stubs`` package usable by mypy: copy it to ``.typings/isaacgym`` with its one
syntax error fixed (two properties are named ``lambda``, a Python keyword, which stops mypy from
parsing the whole file). ``make typecheck`` runs this first; pyproject's ``mypy_path`` points at
``.typings``, which mypy searches before installed packages.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    files = importlib.metadata.files("isaacgym-stubs") or []
    stub = next((f for f in files if str(f).endswith("gymapi.pyi")), None)
    if stub is None:
        raise SystemExit("isaacgym-stubs is not installed (make install puts it in the venv)")
    source = Path(str(stub.locate())).read_text()
    fixed = re.sub(r"\bdef lambda\(", "def lambda_(", source)
    out = ROOT / ".typings" / "isaacgym"
    out.mkdir(parents=True, exist_ok=True)
    (out / "gymapi.pyi").write_text(fixed)
    (out / "__init__.pyi").write_text("from . import gymapi as gymapi\n")


if __name__ == "__main__":
    main()
