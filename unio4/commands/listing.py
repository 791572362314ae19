"""``unio4 list``: what there is to choose from: presets by kind, physics backends, robots."""

from __future__ import annotations

import argparse

WORDS = ("list",)
HELP = "the presets (tasks, training, data, log formats, deploy, session, reality gaps), physics backends and robots"
# How each kind of preset is chosen on the command line.
FLAGS = {
    "task": "--task NAME",
    "train": "train --config NAME",
    "data": "data generate --config NAME",
    "import": "data import --format NAME",
    "deploy": "deploy --config NAME",
    "session": "session --config NAME",
    "reality": "emulate --reality NAME",
    "zoo": "emulate --reality zoo:SEED",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", default=None, help=f"only this kind: {', '.join([*FLAGS, 'backends', 'robots'])}")


def run(args: argparse.Namespace) -> int:
    from unio4.configs.loader import CONFIG_DIR, read_yaml
    from unio4.robots.description import ROBOTS_DIR
    from unio4.sim.backends import BACKENDS

    kinds = sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
    known = [*kinds, "backends", "robots"]
    if args.kind is not None and args.kind not in known:
        raise ValueError(f"list: unknown kind {args.kind!r}; one of {known}")
    for kind in kinds:
        if args.kind not in (None, kind):
            continue
        print(f"{kind} presets ({FLAGS.get(kind, '--config NAME')}; a YAML path works too):")
        for path in sorted((CONFIG_DIR / kind).glob("*.yaml")):
            first = path.read_text().splitlines()[0] if path.read_text() else ""
            note = first.lstrip("# ").strip() if first.startswith("#") else ""
            read_yaml(path)  # a preset that does not parse is worth knowing about here
            print(f"  {path.stem:<24} {note}")
    if args.kind in (None, "backends"):
        print("physics backends (--backend): " + ", ".join(BACKENDS))
    if args.kind in (None, "robots"):
        robots = sorted(p.name for p in ROBOTS_DIR.iterdir() if (p / f"{p.name}.yaml").is_file())
        print("robots: " + ", ".join(robots))
    return 0
