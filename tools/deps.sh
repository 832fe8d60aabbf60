#!/bin/bash
# Installs the Debian packages vmlwc needs to build and test (idempotent; root or sudo).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libelf-dev libcriterion-dev linux-libc-dev libseccomp-dev lowdown)
# Unmodified programs the suite runs in the guest (tests/programs).
pkgs+=(python3 perl)
# The suite also runs in QEMU test VMs with nested KVM (tools/kvm-vm), on every machine.
pkgs+=(qemu-system-x86 linux-image-amd64 busybox-static)
# bench/server.sh drives the session server with wrk and plots requests/s with gnuplot.
pkgs+=(wrk gnuplot-nox)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "tools/deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
