#!/bin/bash
# Runs a command where /dev/kvm works: directly, or (announced) inside the nested-KVM QEMU VM.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	exec "$@"
fi
echo "vmlwc: no usable /dev/kvm on this machine: running '$*' inside a QEMU VM with nested KVM" \
     "(tools/kvm-vm/run-in-vm)" >&2
exec tools/kvm-vm/run-in-vm --timeout "${VMLWC_VM_TIMEOUT:-3000}" -- "$@"
