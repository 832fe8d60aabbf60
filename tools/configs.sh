# Sourced by tools/test.sh and tools/bench.sh: the configurations the suite and the benchmarks
# run in, and how to run a command in each.
#   kvm         this machine's /dev/kvm (on PVM: ring 0 emulated, shadow paging, MAXPHYADDR 46)
#   vm-pvm48    nested SVM with shadow paging (npt=0), MAXPHYADDR 48, RLIMIT_NOFILE 20000, and
#               PVM's paths: ring-3 `syscall` and lwC calls through the doorbell, copy-on-write
#               and table copies on the host (VMLWC_TEST_PVM)
#   vm-npt48    nested SVM with NPT, MAXPHYADDR 48 (identity GPAs), RLIMIT_NOFILE 20000
#   vm-npt40    nested SVM with NPT, MAXPHYADDR 40 (GPA windows), RLIMIT_NOFILE 1024
VMLWC_ALL_CONFIGS="kvm vm-pvm48 vm-npt48 vm-npt40"

kvm_ok() { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }

# The paths (vmlwc_stats().platform bits TDP 0x1, PVM 0x2, HOST_COW 0x4, LWC_DOORBELL 0x8,
# LAZY_TABLES 0x40) each configuration exists to run; the suites assert them
# (VMLWC_TEST_EXPECT_PATHS, tests/guest_common.h), so a configuration cannot quietly run others.
# kvm: whatever this host's KVM is: PVM, two-dimensional paging, or shadow paging.
config_paths() {
	case $1 in
	kvm)
		if [ -e /sys/module/kvm_pvm ]; then echo 0x4e
		elif grep -qs '^[Y1]' /sys/module/kvm_intel/parameters/ept /sys/module/kvm_amd/parameters/npt; then echo 0x41
		else echo 0x44
		fi ;;
	vm-pvm48) echo 0x4e ;;
	vm-npt48 | vm-npt40) echo 0x41 ;;
	*) return 2 ;;
	esac
}

# config_run CONFIG CMD ARGS...: CMD in that configuration (the VMs are TCG: one host CPU each)
config_run() {
	local c=$1 paths
	shift
	paths=$(config_paths "$c") || { echo "unknown configuration $c" >&2; return 2; }
	local vm=(tools/kvm-vm/run-in-vm --cpus "${VMLWC_VM_CPUS:-1}" --timeout "${VMLWC_VM_TIMEOUT:-2400}"
		  -e VMLWC_TEST_EXPECT_PATHS="$paths" -e VMLWC_TEST_CONFIG="$c")
	case $c in
	kvm)
		# the limit is part of the configuration: a machine that refuses it cannot run it
		VMLWC_TEST_EXPECT_PATHS=$paths VMLWC_TEST_CONFIG=kvm bash -c 'ulimit -n 20000 || { echo "configuration kvm: ulimit -n 20000 refused" >&2; exit 125; }
			exec "$@"' _ "$@" ;;
	vm-pvm48) "${vm[@]}" --npt 0 --phys-bits 48 --nofile 20000 -e VMLWC_TEST_HOOKS=1 -e VMLWC_TEST_PVM=1 -- "$@" ;;
	vm-npt48) "${vm[@]}" --npt 1 --phys-bits 48 --nofile 20000 -- "$@" ;;
	vm-npt40) "${vm[@]}" --npt 1 --nofile 1024 -- "$@" ;;
	*) echo "unknown configuration $c" >&2; return 2 ;;
	esac
}

# How many VMs at once: one per host CPU.
vm_parallel() {
	local p=${VMLWC_VM_PARALLEL:-$(( $(nproc) / ${VMLWC_VM_CPUS:-1} ))}
	[ "$p" -ge 1 ] || p=1
	echo "$p"
}
