#!/bin/bash
# Runs a command where /dev/kvm works: directly, or (announced) inside the nested-KVM QEMU VM.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	exec "$@"
fi
echo "vmlwc: no usable /dev/kvm on this machine: running '$*' inside a QEMU VM with nested KVM" \
     "(tools/kvm-vm/run-in-vm)" >&2
# One vCPU: nested SVM under multi-threaded TCG has frozen the whole VM here now and then.
exec tools/kvm-vm/run-in-vm --cpus "${VMLWC_VM_CPUS:-1}" --timeout "${VMLWC_VM_TIMEOUT:-3000}" -- "$@"
