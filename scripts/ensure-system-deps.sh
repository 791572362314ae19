#!/bin/sh
# System packages the test suite uses: a real OpenSSH server, started on loopback by the
# `unio4 flash` tests (Debian's openssh-server). Installs it when missing and we are root.
set -eu
if [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null && command -v scp >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "ensure-system-deps: openssh-server/openssh-client are missing; install them (sudo apt-get install openssh-server)" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null
