#!/bin/sh
# System packages the test suite uses, installed when missing and we are root (Debian):
# - a real OpenSSH server, started on loopback by the `unio4 flash` tests (openssh-server);
# - Mesa's EGL with its software rasteriser, for headless MuJoCo rendering (replay pictures).
set -eu
need=""
if ! { [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null && command -v scp >/dev/null; }; then
    need="$need openssh-server openssh-client"
fi
if ! ldconfig -p | grep -q "libEGL_mesa.so.0"; then
    need="$need libegl1 libegl-mesa0 libgl1-mesa-dri"
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "ensure-system-deps: missing system packages; install them: sudo apt-get install$need" >&2
    exit 1
fi
apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
