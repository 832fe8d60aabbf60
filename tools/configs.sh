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

# config_run CONFIG CMD ARGS...: CMD in that configuration (the VMs are TCG: one host CPU each)
config_run() {
	local c=$1
	shift
	local vm=(tools/kvm-vm/run-in-vm --cpus "${VMLWC_VM_CPUS:-1}" --timeout "${VMLWC_VM_TIMEOUT:-2400}")
	case $c in
	kvm) bash -c 'ulimit -n 20000 2>/dev/null || true; exec "$@"' _ "$@" ;;
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
