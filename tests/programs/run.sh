#!/bin/sh
# Unmodified programs that use threads and signals, natively and in the guest (LD_PRELOAD shim):
# the same stdout and the same exit status (or death by the same signal) in both.
set -u
preload=$1
dir=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # name, then the command
	name=$1
	shift
	"$@" >"$tmp/native" 2>"$tmp/native.err"
	nrc=$?
	timeout 300 env LD_PRELOAD="$preload" "$@" >"$tmp/guest" 2>"$tmp/guest.err"
	grc=$?
	echo "programs: $name: native status $nrc, guest status $grc"
	sed 's/^/  native: /' "$tmp/native"
	sed 's/^/  guest:  /' "$tmp/guest"
	if [ "$nrc" -ne "$grc" ] || ! cmp -s "$tmp/native" "$tmp/guest"; then
		echo "programs: $name: the guest differs from native" >&2
		sed 's/^/  guest stderr: /' "$tmp/guest.err" >&2
		fail=1
	fi
}
for p in /usr/bin/python3 /usr/bin/perl; do
	if [ ! -x "$p" ]; then
		echo "programs: $p is missing (tools/deps.sh installs it)" >&2
		exit 1
	fi
done
check python_threads_signals /usr/bin/python3 "$dir/threads_signals.py"
check perl_alarm /usr/bin/perl "$dir/alarm.pl"
exit $fail
