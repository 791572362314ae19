"""``unio4 robot export`` (unio4/commands/robot_export.py) writes models the engines load."""

from __future__ import annotations

from pathlib import Path

from unio4.cli import main


def test_robot_export_writes_loadable_models(tmp_path: Path) -> None:
    import mujoco

    assert main(["robot", "export", "--out", str(tmp_path)]) == 0
    model = mujoco.MjModel.from_xml_path(str(tmp_path / "go1.xml"))
    assert model.nu == 12
    assert "<robot" in (tmp_path / "go1.urdf").read_text()
