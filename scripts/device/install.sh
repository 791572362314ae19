#!/bin/sh
# On the GPU machine, once every .device/chunk-NN folder of pack_wheels.sh has been copied there:
# reassemble the wheel tar, verify its sha256, install into .device/site.
# Then: export PYTHONPATH=$PWD/.device/site:$PWD   (torch and the rest come from the image)
set -eu
cd "$(dirname "$0")/../.."
if [ -f .device/site/.installed ]; then echo "install: .device/site already installed"; exit 0; fi
cat .device/chunk-*/part-* > .device/wheels.tar
expected=$(cut -d' ' -f1 .device/chunk-00/wheels.tar.sha256)
actual=$(sha256sum .device/wheels.tar | cut -d' ' -f1)
if [ "$expected" != "$actual" ]; then
  echo "install: reassembled tar sha256 $actual != $expected: a chunk-NN folder is missing or stale" >&2
  exit 2
fi
tar -C .device -xf .device/wheels.tar
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target .device/site .device/wheels/*.whl
touch .device/site/.installed
echo "install: $(ls .device/wheels | wc -l) wheels into .device/site"
