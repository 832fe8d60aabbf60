#!/bin/bash
# Runs the whole test suite in every configuration that matters: installs what is missing, builds,
# then CTest directly on /dev/kvm where it works and, in every case, inside the QEMU test VM
# made as PVM-like as it can be (see docs/testing.md). Exits non-zero if any configuration fails,
# if a configuration asked for by name (VMLWC_TEST_CONFIGS) could not run, or if none ran at all;
# only in the default set may `kvm` be skipped on a machine without /dev/kvm, and it says so.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
tools/build.sh

. tools/configs.sh
configs=(${VMLWC_TEST_CONFIGS:-$VMLWC_ALL_CONFIGS})
named=${VMLWC_TEST_CONFIGS:+1}
for c in "${configs[@]}"; do
	config_paths "$c" >/dev/null || { echo "vmlwc tests: unknown configuration $c (known: $VMLWC_ALL_CONFIGS)" >&2; exit 2; }
done
ctest_cmd=(ctest --test-dir build --output-on-failure)
parallel=$(vm_parallel)
logdir=build/test-logs
mkdir -p "$logdir"

run_config() { config_run "$1" "${ctest_cmd[@]}"; }

# Runs configuration $1 with its output in $logdir/$1.log; records status and seconds.
run_logged() {
	local t0=$(date +%s) rc=0
	run_config "$1" >"$logdir/$1.log" 2>&1 || rc=$?
	echo "$rc $(( $(date +%s) - t0 ))" >"$logdir/$1.result"
}

show_log() {
	echo "=== vmlwc tests: configuration $1 ===" >&2
	cat "$logdir/$1.log" >&2
}

rm -f "$logdir"/*.result
vms=()
for c in "${configs[@]}"; do
	if [ "$c" = kvm ]; then
		if ! kvm_ok; then
			# not silent: the VM configurations run the same suite on a real KVM; asked for
			# by name, it is a failure
			echo "vmlwc: no usable /dev/kvm on this machine: configuration kvm NOT RUN" >&2
			[ -n "$named" ] && echo "nokvm 0" >"$logdir/kvm.result" && echo "no usable /dev/kvm" >"$logdir/kvm.log"
			continue
		fi
		# alone: its cost checks measure real time
		run_logged kvm
		show_log kvm
	else
		vms+=("$c")
	fi
done
declare -A shown
for c in "${vms[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do
		wait -n || true
	done
	run_logged "$c" &
	echo "vmlwc tests: configuration $c started in the test VM (log: $logdir/$c.log)" >&2
done
# logs in configuration order as they complete
for c in "${vms[@]}"; do
	while [ ! -e "$logdir/$c.result" ]; do
		sleep 5
	done
	show_log "$c"
done
wait

failed=0 ran=0
echo >&2
echo "vmlwc tests, per configuration:" >&2
for c in "${configs[@]}"; do
	if [ ! -e "$logdir/$c.result" ]; then
		printf '  %-12s %s\n' "$c" "NOT RUN (no usable /dev/kvm; the VM configurations run the suite)" >&2
		continue
	fi
	read -r rc secs <"$logdir/$c.result"
	if [ "$rc" = 0 ]; then
		st=passed
		ran=$((ran + 1))
	elif [ "$rc" = nokvm ]; then
		st="FAILED: asked for by name, but no usable /dev/kvm"
		failed=1
	else
		st="FAILED (exit $rc)"
		failed=1
	fi
	printf '  %-12s %-20s %s s\n' "$c" "$st" "$secs" >&2
done
if [ "$ran" = 0 ] && [ "$failed" = 0 ]; then
	echo "vmlwc tests: no configuration produced a result" >&2
	failed=1
fi
exit $failed
