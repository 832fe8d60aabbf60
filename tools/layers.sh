#!/bin/bash
# Checks the host library's floor plan (docs/architecture.md): from the compiled objects, every
# call or data reference between files, and each file's layer; a reference from a lower layer
# to a higher one is a violation. Exits non-zero on any. Usage: tools/layers.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
objdir=$build/CMakeFiles/vmlwc_obj.dir/libvmlwc
[ -d "$objdir" ] || { echo "tools/layers.sh: no objects in $objdir (build first)" >&2; exit 2; }

# layer of each source file, bottom (0) to top; a file missing here is an error too
layer_of() {
	case $1 in
	errors.c|trace.c|config.c|die.c|state.c) echo 0 ;;                             # leaves
	arena.c|memmap.c|pool.c|ptpage.c|memrange.c) echo 1 ;;                    # memory
	kvm.c|cpu_x86_64.c|run.c|probe.c|enter_x86_64.S|gate_x86_64.S|stub_blob.S) echo 2 ;; # machine
	pgtable.c|loader.c) echo 3 ;;                                             # page tables (the stub into the kernel half)
	fdtab.c|cred.c|policy.c|sigtab.c|fsctx.c|procmaps.c) echo 4 ;;             # shadows
	cow.c|view.c) echo 5 ;;                                                 # views
	uaccess.c) echo 6 ;;                                                      # uaccess
	sys/*) echo 7 ;;                                                          # syscall families
	lwc_host.c|rights.c) echo 8 ;;                                            # lwC
	hypercall.c|fault.c) echo 9 ;;                                            # ports
	vmlwc.c|lwc.c|hostonly.c|sandbox.c|stats.c) echo 10 ;;                           # API edge
	*) echo -1 ;;
	esac
}
names=(leaves memory machine "page tables" shadows views uaccess sys lwC ports "API edge")

declare -A def lay
objs=$(cd "$objdir" && find . -name '*.o' | sed 's|^\./||' | sort)
bad=0
for o in $objs; do
	src=${o%.o}
	l=$(layer_of "$src")
	if [ "$l" = -1 ]; then
		echo "tools/layers.sh: $src has no layer: add it to tools/layers.sh and docs/architecture.md" >&2
		bad=1
		continue
	fi
	lay[$src]=$l
	for s in $(nm --defined-only -g "$objdir/$o" | awk '$2 ~ /[TDBRC]/ {print $3}'); do
		def[$s]=$src
	done
done
violations=0
for o in $objs; do
	src=${o%.o}
	[ -n "${lay[$src]:-}" ] || continue
	for s in $(nm -u "$objdir/$o" | awk '{print $2}' | sort -u); do
		t=${def[$s]:-}
		[ -n "$t" ] && [ "$t" != "$src" ] || continue
		if [ "${lay[$t]}" -gt "${lay[$src]}" ]; then
			echo "upward: $src (${names[${lay[$src]}]}) -> $s in $t (${names[${lay[$t]}]})"
			violations=$((violations + 1))
		fi
	done
done
echo "tools/layers.sh: $violations upward reference(s)" >&2
[ "$violations" = 0 ] && [ "$bad" = 0 ]
