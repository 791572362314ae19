"""``unio4 export``: checkpoint -> policy bundle (policy.onnx with normalisation baked in + manifest.yaml)."""

from __future__ import annotations

import argparse

from unio4.commands.options import add_out

WORDS = ("export",)
HELP = "checkpoint -> policy bundle (policy.onnx with normalisation baked in + manifest.yaml)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a unio4 checkpoint (train online / train bc)")
    add_out(p, "bundle directory to write", required=True)


def run(args: argparse.Namespace) -> int:
    from unio4.deploy.bundle import load_bundle
    from unio4.learning.export import export_bundle

    out = export_bundle(args.checkpoint, args.out)
    bundle = load_bundle(out, robot=None)  # verify what was written, as the robot will
    files = ", ".join(f"{name} sha256 {digest[:12]}" for name, digest in bundle.manifest["files"].items())
    print(f"wrote {out}: observation {bundle.obs_size}, action {bundle.act_size}, robot {bundle.manifest['robot']}; {files}")
    return 0
