"""A bundle on every emulated robot profile (``configs/reality/``): forward, sideways and turning commands, with pushes.

For each profile and command, a fresh ``unio4 emulate --lockstep --reality P --push-every S --push-speed V`` and a
10 s ``unio4 deploy --command ...`` (``emulator_eval.run_command``); the emulator's ground truth gives the speed or yaw
rate held over the second half of the policy phase, and whether the trunk tilted past 1 rad (a fall). Runs already
measured in ``--out`` are read again. Prints one markdown row per profile and writes ``profiles.json``.

Usage: .venv/bin/python scripts/bench/emulator_profiles.py pretrained/go1_flat_well --out runs/profiles
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emulator_eval import run_command, walk_dir

PROFILES = ("nominal", "payload", "slippery", "weak_motors", "go1_real", "pybullet")
COMMANDS = (
    *((v, 0.0, 0.0) for v in (0.3, 0.6, 0.9)),
    *((0.0, v, 0.0) for v in (0.3, 0.6)),
    *((0.0, 0.0, w) for w in (0.3, 0.6, 0.9)),
)


def row(profile: str, walks: list[dict]) -> str:
    """One markdown row: what each command held, the mean speed and yaw-rate errors, the falls."""
    held, speed, yaw = [], [], []
    for c, w in zip(COMMANDS, walks, strict=True):
        if c[2] == 0.0:
            held.append(w["vx"] if c[0] else w["vy"])
            speed.append(((w["vx"] - c[0]) ** 2 + (w["vy"] - c[1]) ** 2) ** 0.5)
        else:
            held.append(w["wz"])
            yaw.append(abs(w["wz"] - c[2]))
    cells = " | ".join(f"{h:.2f}" for h in held)
    falls = sum(w["fell"] for w in walks)
    return f"| {profile} | {cells} | {sum(speed) / len(speed):.3f} | {sum(yaw) / len(yaw):.3f} | {falls} |"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--profiles", nargs="+", default=list(PROFILES))
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--push-every", type=float, default=3.0, help="s between pushes (<= 0: none)")
    p.add_argument("--push-speed", type=float, default=0.5, help="m/s")
    args = p.parse_args()
    pushes = ("--push-every", f"{args.push_every:g}", "--push-speed", f"{args.push_speed:g}")
    table = {}
    for profile in args.profiles:
        dirs = [walk_dir(args.out / profile, c) for c in COMMANDS]
        walks = zip(COMMANDS, dirs, strict=True)
        table[profile] = [run_command(args.bundle, c, args.seconds, d, profile, pushes) | {"command": c} for c, d in walks]
    head = ["fwd 0.3", "fwd 0.6", "fwd 0.9", "side 0.3", "side 0.6", "turn 0.3", "turn 0.6", "turn 0.9"]
    print("| profile | " + " | ".join(head) + " | mean speed error m/s | mean yaw-rate error rad/s | falls |")
    print("|---" * (len(head) + 4) + "|")
    for profile, walks in table.items():
        print(row(profile, walks))
    (args.out / "profiles.json").write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
