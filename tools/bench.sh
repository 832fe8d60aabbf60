#!/bin/bash
# Runs the benchmarks (bench-syscall, bench-switch, bench-create, and with guest threads
# bench-threads, bench-syscall-mt, bench-switch-mt, bench-signal, bench-munmap) in each configuration of
# tools/configs.sh: this machine's /dev/kvm in full, the test VMs with --quick (TCG times do not
# carry over; the counts do). Output per configuration in build/bench-logs/<config>.txt.
# Usage: tools/bench.sh [configuration...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh >/dev/null
. tools/configs.sh
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=($VMLWC_ALL_CONFIGS)
logdir=build/bench-logs
mkdir -p "$logdir"
parallel=$(vm_parallel)

bench_all() {
	local q=$1
	shift
	config_run "$@" sh -c "for b in syscall switch create threads syscall-mt switch-mt signal munmap; do echo \"### bench-\$b\"; build/bench-\$b $q || exit 1; done"
}

for c in "${configs[@]}"; do
	if [ "$c" = kvm ]; then
		if ! kvm_ok; then
			echo "tools/bench.sh: no usable /dev/kvm: configuration kvm NOT RUN" >&2
			continue
		fi
		echo "tools/bench.sh: $c (alone: times are real)" >&2
		bench_all "" kvm >"$logdir/kvm.txt" 2>&1 || echo "tools/bench.sh: kvm FAILED" >&2
		continue
	fi
	while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do
		wait -n || true
	done
	echo "tools/bench.sh: $c (test VM, --quick)" >&2
	( bench_all --quick "$c" >"$logdir/$c.txt" 2>&1 || echo "tools/bench.sh: $c FAILED" >&2 ) &
done
wait
for c in "${configs[@]}"; do
	[ -e "$logdir/$c.txt" ] && { echo "=== $c ==="; cat "$logdir/$c.txt"; }
done
