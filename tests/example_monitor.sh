#!/bin/sh
# The reference-monitor example on a pipe: it must exit 0, its sandbox must report the input's
# counts and a refused open, and the monitor itself must have refused that open (its own count
# of denied calls): a "Permission denied" from the kernel, or a monitor that let the open through,
# prints the same report line.
set -u
monitor=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'one two three\n' | "$monitor" >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out"
cat "$tmp/err" >&2
fail=0
if [ "$rc" -ne 0 ]; then
	echo "example_monitor: vmlwc-monitor exited with status $rc" >&2
	fail=1
fi
if ! grep -qx '14 bytes, 3 words; open(/etc/shadow) -> Permission denied' "$tmp/out"; then
	echo "example_monitor: no report of 14 bytes, 3 words and a refused open on stdout" >&2
	fail=1
fi
# read (the input), read (end of file), write (the report) allowed; the open denied
if ! grep -qx 'monitor: 3 syscalls allowed, 1 denied' "$tmp/err"; then
	echo "example_monitor: the monitor did not count 3 allowed and 1 denied calls" >&2
	fail=1
fi
exit $fail
