#!/usr/bin/env bash
# Wheels for unio4's GPU backend on an offline GPU machine reached through size-limited copies.
#
# A typical GPU image (Python 3.12, torch, numpy, h5py, matplotlib, rich, tensorboard... but no
# MuJoCo, Warp or Gymnasium) without network access, where one copy may hold at most 64 MiB while the
# warp-lang wheel alone is ~150 MB. This downloads the missing wheels (cp312, manylinux x86_64) at the
# exact versions of requirements.lock, tars them, and splits the tar into 56 MiB parts, one per folder:
#   .device/chunk-00, .device/chunk-01, ...   (git-ignored)
# Copy the folders over one after another, then run `sh scripts/device/install.sh` there: it
# reassembles, checks sha256 and installs into .device/site.
set -euo pipefail
cd "$(dirname "$0")/../.."
packages="mujoco mujoco-core mujoco-studio mujoco-warp warp-lang gymnasium Farama-Notifications glfw PyOpenGL"
out=.device
rm -rf "$out" && mkdir -p "$out/wheels"
pins=""
for name in $packages; do
  pin=$(grep -i -E "^${name}==" requirements.lock || true)
  [ -n "$pin" ] || { echo "pack_wheels: $name is not pinned in requirements.lock" >&2; exit 2; }
  pins="$pins $pin"
done
# shellcheck disable=SC2086
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$out/wheels" $pins
tar -C "$out" -cf "$out/wheels.tar" wheels
(cd "$out" && split -b 56M -d -a 2 wheels.tar part- && sha256sum wheels.tar > wheels.tar.sha256)
for part in "$out"/part-*; do
  folder="$out/chunk-${part##*part-}"
  mkdir -p "$folder" && mv "$part" "$folder/" && cp "$out/wheels.tar.sha256" "$folder/"
done
rm -rf "$out/wheels" "$out/wheels.tar" "$out/wheels.tar.sha256"
echo "copy these folders to the GPU machine, one after another:"
for folder in "$out"/chunk-*; do echo "  $folder ($(du -sh "$folder" | cut -f1))"; done
