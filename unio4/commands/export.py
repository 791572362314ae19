"""``unio4 export``: checkpoint -> policy bundle (policy.onnx with normalisation baked in + manifest.yaml).

The bundle also carries the weights-only ``checkpoint.pt`` (``--init BUNDLE``). Given a bundle instead
of a checkpoint, export re-exports it from that ``checkpoint.pt``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unio4.commands.options import add_out

WORDS = ("export",)
HELP = "checkpoint -> policy bundle (policy.onnx with normalisation baked in, manifest.yaml, weights-only checkpoint.pt)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a unio4 checkpoint (train online / train bc), or a bundle to re-export from its checkpoint.pt")
    add_out(p, "bundle directory to write", required=True)
    p.add_argument("--force", action="store_true", help="replace the bundle (or any non-empty directory) at --out")


def run(args: argparse.Namespace) -> int:
    from unio4.deploy.bundle import load_bundle
    from unio4.learning.export import export_bundle, init_checkpoint, is_bundle

    if is_bundle(Path(args.checkpoint)):
        print(f"{args.checkpoint} is a policy bundle: re-exporting it from {init_checkpoint(args.checkpoint)}")
    out = export_bundle(args.checkpoint, args.out, force=args.force)
    bundle = load_bundle(out, robot=None)  # verify what was written, as the robot will
    files = ", ".join(f"{name} sha256 {digest[:12]}" for name, digest in bundle.manifest["files"].items())
    print(f"wrote {out}: observation {bundle.obs_size}, action {bundle.act_size}, robot {bundle.manifest['robot']}; {files}")
    return 0
