"""``unio4 data export``: an HDF5 dataset -> a Minari dataset in the local Minari root (minari.load_dataset reads it)."""

from __future__ import annotations

import argparse
from pathlib import Path

WORDS = ("data", "export")
HELP = "HDF5 dataset -> Minari dataset in the local Minari root (read back with --data minari:NAME)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="HDF5 dataset (unio4 collect, data pack, data generate, data import)")
    p.add_argument("--minari", required=True, metavar="NAME", help="Minari dataset id, (namespace/)name(-vN); -v0 when no version")
    p.add_argument(
        "--minari-root",
        default=None,
        metavar="DIR",
        help="Minari root to write into (default: MINARI_DATASETS_PATH, else ~/.minari/datasets)",
    )


def run(args: argparse.Namespace) -> int:
    from unio4.learning.data.dataset import import_minari, load_dataset
    from unio4.learning.data.minari_io import export_minari

    import_minari("data export --minari")  # before reading the data
    source = Path(args.data)
    result = export_minari(load_dataset(source), args.minari, source, args.minari_root)
    print(f"wrote minari:{result.dataset_id} in {result.root}: {result.episodes} episodes, {result.steps} steps")
    print(f"  read it with: --data minari:{result.dataset_id}" + (f" (MINARI_DATASETS_PATH={result.root})" if args.minari_root else ""))
    return 0
