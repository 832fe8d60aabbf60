#!/bin/bash
# Runs the whole test suite in every configuration that matters: installs what is missing, builds,
# then CTest directly on /dev/kvm where it works and, in every case, inside the QEMU test VM
# made as PVM-like as it can be (see docs/testing.md). Exits non-zero if any configuration fails.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
tools/build.sh

# name | how to run | what it adds
#   kvm         this machine's /dev/kvm (on PVM: ring 0 emulated, shadow paging, MAXPHYADDR 46)
#   vm-npt48    nested SVM with NPT, MAXPHYADDR 48 (identity GPAs), RLIMIT_NOFILE 20000
#   vm-pvm48    nested SVM with shadow paging (npt=0), MAXPHYADDR 48, RLIMIT_NOFILE 20000, and
#               PVM's paths: ring-3 `syscall` and lwC calls through the doorbell, copy-on-write
#               and table copies on the host (VMLWC_TEST_PVM)
#   vm-npt40    nested SVM with NPT, MAXPHYADDR 40 (GPA windows), RLIMIT_NOFILE 1024
configs=(${VMLWC_TEST_CONFIGS:-kvm vm-pvm48 vm-npt48 vm-npt40})
ctest_cmd=(ctest --test-dir build --output-on-failure)
vm=(tools/kvm-vm/run-in-vm --cpus "${VMLWC_VM_CPUS:-1}" --timeout "${VMLWC_VM_TIMEOUT:-2400}")
# VMs are TCG: one per host CPU at a time, the longest first
parallel=${VMLWC_VM_PARALLEL:-$(( $(nproc) / ${VMLWC_VM_CPUS:-1} ))}
[ "$parallel" -ge 1 ] || parallel=1
logdir=build/test-logs
mkdir -p "$logdir"
kvm_ok() { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }

run_config() {
	case $1 in
	kvm) bash -c 'ulimit -n 20000 2>/dev/null || true; exec "$@"' _ "${ctest_cmd[@]}" ;;
	vm-npt48) "${vm[@]}" --npt 1 --phys-bits 48 --nofile 20000 -- "${ctest_cmd[@]}" ;;
	vm-pvm48) "${vm[@]}" --npt 0 --phys-bits 48 --nofile 20000 -e VMLWC_TEST_HOOKS=1 -e VMLWC_TEST_PVM=1 \
			-- "${ctest_cmd[@]}" ;;
	vm-npt40) "${vm[@]}" --npt 1 --nofile 1024 -- "${ctest_cmd[@]}" ;;
	*) echo "tools/test.sh: unknown configuration $1" >&2; return 2 ;;
	esac
}

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
			# not silent: the VM configurations run the same suite on a real KVM
			echo "vmlwc: no usable /dev/kvm on this machine: configuration kvm NOT RUN" >&2
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

failed=0
echo >&2
echo "vmlwc tests, per configuration:" >&2
for c in "${configs[@]}"; do
	if [ ! -e "$logdir/$c.result" ]; then
		printf '  %-12s %s\n' "$c" "NOT RUN (no /dev/kvm)" >&2
		continue
	fi
	read -r rc secs <"$logdir/$c.result"
	if [ "$rc" = 0 ]; then st=passed; else st="FAILED (exit $rc)"; failed=1; fi
	printf '  %-12s %-20s %s s\n' "$c" "$st" "$secs" >&2
done
exit $failed
