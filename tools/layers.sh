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
	errors.c|trace.c|config.c|die.c|state.c|vmlock.c) echo 0 ;;                    # leaves
	arena.c|memmap.c|pool.c|ptpage.c|memrange.c) echo 1 ;;                    # memory
	kvm.c|cpu_x86_64.c|run.c|probe.c|enter_x86_64.S|gate_x86_64.S|stub_blob.S) echo 2 ;; # machine
	pgtable.c|loader.c) echo 3 ;;                                             # page tables (the stub into the kernel half)
	fdtab.c|cred.c|policy.c|sigtab.c|fsctx.c|procmaps.c) echo 4 ;;             # shadows
	cow.c|view.c) echo 5 ;;                                                 # views
	uaccess.c) echo 6 ;;                                                      # uaccess
	sys/*) echo 7 ;;                                                          # syscall families
	lwc_host.c|overlay.c|rights.c|thread.c) echo 8 ;;                         # lwC
	hypercall.c|fault.c|sigframe.c|sigdeliver.c) echo 9 ;;                        # ports
	vmlwc.c|lwc.c|hostonly.c|sandbox.c|stats.c) echo 10 ;;                           # API edge
	*) echo -1 ;;
	esac
}
names=(leaves memory machine "page tables" shadows views uaccess sys lwC ports "API edge")

declare -A def lay
objs=$(cd "$objdir" && find . -name '*.o' | sed 's|^\./||' | sort)
bad=0
layers=$(mktemp)
for o in $objs; do
	l=$(layer_of "${o%.o}")
	if [ "$l" = -1 ]; then
		echo "tools/layers.sh: ${o%.o} has no layer: add it to tools/layers.sh and docs/architecture.md" >&2
		bad=1
		continue
	fi
	echo "$o $l" >>"$layers"
done
# one nm for the definitions and one for the references of every object (fast under TCG too)
refs=$(mktemp)
trap 'rm -f "$layers" "$refs"' EXIT
(cd "$objdir" && {
	nm -A --defined-only -g $objs | awk '$2 ~ /^[TDBRC]$/ {sub(/:.*/, "", $1); print "D", $1, $3}'
	nm -A -u $objs | awk '{sub(/:.*/, "", $1); print "U", $1, $NF}'
}) >"$refs"
# no circle at all, within a layer either: tsort names every loop it finds in the file graph
loops=$(awk '$1 == "D" { def[$3] = $2; next } { t = def[$3]; if (t != "" && t != $2) { sub(/\.o$/, "", t); s = $2; sub(/\.o$/, "", s); print s, t } }' "$refs" |
	sort -u | tsort 2>&1 >/dev/null | grep -v 'input contains a loop' | sed 's/^tsort: //' | tr '\n' ' ' || true)
if [ -n "$loops" ]; then
	echo "tools/layers.sh: the file graph has a circle through: $loops" >&2
	bad=1
fi
violations=$(awk -v names="leaves|memory|machine|page tables|shadows|views|uaccess|sys|lwC|ports|API edge" -v lf="$layers" '
	BEGIN { split(names, nm, "|"); while ((getline line < lf) > 0) { split(line, f, " "); lay[f[1]] = f[2] } }
	$1 == "D" { def[$3] = $2; next }
	{ ref[++n] = $2 " " $3 }
	END {
		v = 0
		for (i = 1; i <= n; i++) {
			split(ref[i], r, " "); src = r[1]; s = r[2]; t = def[s]
			if (t == "" || t == src || !(src in lay) || !(t in lay)) continue
			if (lay[t] + 0 > lay[src] + 0) {
				sub(/\.o$/, "", src); tt = t; sub(/\.o$/, "", tt)
				printf "upward: %s (%s) -> %s in %s (%s)\n", src, nm[lay[r[1]] + 1], s, tt, nm[lay[t] + 1] > "/dev/stderr"
				v++
			}
		}
		print v
	}' "$refs")
echo "tools/layers.sh: $violations upward reference(s)" >&2
[ "$violations" = 0 ] && [ "$bad" = 0 ]
