#!/bin/bash
# Measures vmlwc-session-server with wrk over loopback in each isolation mode (lwc, fork, none, none in the guest).
#
# Usage: bench/server.sh [--duration SECONDS] [--quick] [--plot FILE] [--server PATH]
#
# Every run is one wrk against GET /hello for --duration seconds (default 10), for 1, 16 and 64
# connections, keep-alive (wrk's default) and a new connection per request (Connection: close),
# with --state-mib 16 and 512. --quick: 2 s, 1 and 16 connections, 16 MiB only.
# Output: the table on stdout and in build/bench-logs/server.txt, wrk's and the server's own
# output in build/bench-logs/server-raw.log, and a plot of requests/s in docs/server-bench.png
# (--plot FILE to put it elsewhere).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
duration=10
quick=0
plot=$root/docs/server-bench.png
server=$root/build/vmlwc-session-server
logdir=$root/build/bench-logs

die() {
	echo "bench/server.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '4p' "$0" | sed 's/^# //' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--duration) [ $# -ge 2 ] || usage; duration=$2; shift 2 ;;
	--duration=*) duration=${1#*=}; shift ;;
	--quick) quick=1; shift ;;
	--plot) [ $# -ge 2 ] || usage; plot=$2; shift 2 ;;
	--plot=*) plot=${1#*=}; shift ;;
	--server) [ $# -ge 2 ] || usage; server=$2; shift 2 ;;
	--server=*) server=${1#*=}; shift ;;
	*) usage ;;
	esac
done
[[ $duration =~ ^[1-9][0-9]*$ ]] || die "--duration wants a whole number of seconds, not '$duration'"

conns_list=(1 16 64)
mibs=(16 512)
if [ "$quick" = 1 ]; then
	# --quick is a smoke run of the whole pipeline, not a measurement to quote
	duration=2
	conns_list=(1 16)
	mibs=(16)
fi
modes=(lwc fork none none-guest)
patterns=(keepalive close)

# Missing tools are an error, never a silently shorter table.
command -v wrk >/dev/null || die "wrk is not installed (apt-get install -y wrk, or tools/deps.sh)"
command -v gnuplot >/dev/null || die "gnuplot is not installed (apt-get install -y gnuplot-nox, or tools/deps.sh)"
[ -x "$server" ] || die "no server at $server (build it: tools/build.sh, or pass --server PATH)"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || die "/dev/kvm is not usable: lwc and none-guest modes need it"

mkdir -p "$logdir"
table=$logdir/server.txt
raw=$logdir/server-raw.log
: >"$raw"
work=$(mktemp -d)
srv_pid=
cleanup() {
	if [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null || true
		wait "$srv_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# Start the server for one mode and state size; sets srv_pid and port. It fills its state
# before it listens, so 512 MiB takes a while: wait for its "listening on" line, not a fixed time.
server_start() {
	local mode=$1 mib=$2 args
	case $mode in
	lwc) args=(--isolation=lwc) ;;
	fork) args=(--isolation=fork) ;;
	none) args=(--isolation=none) ;;
	none-guest) args=(--isolation=none --in-guest) ;;
	esac
	: >"$work/srv.out"
	: >"$work/srv.err"
	"$server" "${args[@]}" --port 0 --state-mib "$mib" >"$work/srv.out" 2>"$work/srv.err" &
	srv_pid=$!
	local i
	for ((i = 0; i < 1200; i++)); do
		port=$(awk '/^listening on /{print $3; exit}' "$work/srv.out")
		[ -n "$port" ] && return 0
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$work/srv.err" >&2
	die "the server ($mode, $mib MiB) did not start listening"
}

# Stop it, and keep what it printed.
server_stop() {
	local mode=$1 mib=$2
	kill "$srv_pid" 2>/dev/null || true
	wait "$srv_pid" 2>/dev/null || true
	srv_pid=
	{
		echo "### server $mode $mib MiB: stdout"
		cat "$work/srv.out"
		echo "### server $mode $mib MiB: stderr"
		cat "$work/srv.err"
	} >>"$raw"
}

# "vm_exits emulated_insns" from GET /stats (a connection of its own: the server serves one at a
# time, so this waits behind whatever wrk left queued). -1 -1 outside the guest.
stats_read() {
	local body
	body=$(timeout 60 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0 || exit 1
		printf "GET /stats HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n" >&3
		cat <&3' "$port") || die "GET /stats failed (port $port)"
	local e i
	e=$(sed -n 's/.*vm_exits=\(-\?[0-9]\+\).*/\1/p' <<<"$body")
	i=$(sed -n 's/.*emulated_insns=\(-\?[0-9]\+\).*/\1/p' <<<"$body")
	[ -n "$e" ] && [ -n "$i" ] || die "GET /stats has no vm_exits/emulated_insns (server too old?): $body"
	echo "$e $i"
}

# wrk's latency ("812.00us", "1.23ms", "2.00s") in microseconds.
to_us() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /s$/) m = 1000000;
		else { exit 1 }
		sub(/[a-z]+$/, "", v); printf "%.0f", v * m }'
}

declare -A rps p50 p99 errs exits emul
# One wrk run against the running server; fills the arrays for key "mode mib conns pattern".
run_one() {
	local mode=$1 mib=$2 c=$3 pat=$4 key="$1 $2 $3 $4"
	local threads=$((c < 2 ? c : 2)) hdr=() out s0 s1 s2
	[ "$pat" = close ] && hdr=(-H 'Connection: close')
	# Two reads before the run: their difference is what one /stats connection itself costs,
	# taken off the run's difference below (which holds one more of them)
	s0=$(stats_read)
	s1=$(stats_read)
	local errlines
	errlines=$(wc -l <"$work/srv.err")
	# a time bound of its own, so that a hung server ends the script instead of holding it
	if ! out=$(timeout $((duration + 60)) wrk -t"$threads" -c"$c" -d"${duration}s" --latency "${hdr[@]}" \
		"http://127.0.0.1:$port/hello" 2>&1); then
		printf '%s\n' "$out" >&2
		die "wrk failed: $key"
	fi
	printf '### wrk %s\n%s\n' "$key" "$out" >>"$raw"
	kill -0 "$srv_pid" 2>/dev/null || die "the server died during $key"
	s2=$(stats_read)
	if [ "$(wc -l <"$work/srv.err")" -ne "$errlines" ]; then
		tail -n +$((errlines + 1)) "$work/srv.err" >&2
		die "the server reported errors during $key"
	fi
	local n r l50 l99 non2xx sockerr
	n=$(awk '/ requests in /{print $1; exit}' <<<"$out")
	r=$(awk '/^Requests\/sec:/{print $2; exit}' <<<"$out")
	l50=$(awk '$1 == "50%"{print $2; exit}' <<<"$out")
	l99=$(awk '$1 == "99%"{print $2; exit}' <<<"$out")
	non2xx=$(awk '/Non-2xx or 3xx responses:/{print $NF; exit}' <<<"$out")
	# "Socket errors: connect 0, read 0, write 0, timeout 0": their sum, shown in the table
	sockerr=$(awk '/Socket errors:/{gsub(/,/, ""); print $4 + $6 + $8 + $10; exit}' <<<"$out")
	[ -n "$n" ] && [ -n "$r" ] && [ -n "$l50" ] && [ -n "$l99" ] || { printf '%s\n' "$out" >&2; die "cannot parse wrk's output for $key"; }
	[ "$n" -gt 0 ] || die "no request completed in $key"
	[ -z "$non2xx" ] || die "$non2xx responses other than 2xx/3xx in $key"
	rps[$key]=$r
	p50[$key]=$(to_us "$l50") || die "latency '$l50' not understood in $key"
	p99[$key]=$(to_us "$l99") || die "latency '$l99' not understood in $key"
	errs[$key]=${sockerr:-0}
	exits[$key]=-
	emul[$key]=-
	# The counters: the run's difference minus one /stats connection's, per request wrk counted.
	# Connections wrk left queued at its end are served after it and counted too (an upper bound).
	local a0 b0 a1 b1 a2 b2
	read -r a0 b0 <<<"$s0"
	read -r a1 b1 <<<"$s1"
	read -r a2 b2 <<<"$s2"
	if [ "$a0" -ge 0 ]; then
		exits[$key]=$(awk -v d=$(((a2 - a1) - (a1 - a0))) -v n="$n" 'BEGIN { printf "%.2f", d / n }')
		emul[$key]=$(awk -v d=$(((b2 - b1) - (b1 - b0))) -v n="$n" 'BEGIN { printf "%.2f", d / n }')
	elif [ "$mode" = lwc ] || [ "$mode" = none-guest ]; then
		die "the server in $mode mode reports no vmlwc_stats counters"
	fi
	echo "bench/server.sh: $key: ${rps[$key]} requests/s" >&2
}

for mib in "${mibs[@]}"; do
	for mode in "${modes[@]}"; do
		server_start "$mode" "$mib"
		for c in "${conns_list[@]}"; do
			for pat in "${patterns[@]}"; do
				run_one "$mode" "$mib" "$c" "$pat"
			done
		done
		server_stop "$mode" "$mib"
	done
done

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'
}

{
	echo "# bench/server.sh: vmlwc-session-server under wrk, GET /hello over loopback, ${duration} s per run$([ "$quick" = 1 ] && echo ' (--quick)')"
	echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo 'no git'), $(uname -r), $(nproc) CPUs"
	echo "# p50/p99 in us; errors: wrk's socket errors (connect+read+write+timeout);"
	echo "# exits/req, emul/req: vmlwc_stats vm_exits and emulated_insns per request (guest modes only)"
	echo "# lwc, none and none-guest serve one connection at a time: keep-alive rows above 1 connection"
	echo "# measure the first connection while the others wait (fork serves them all at once)"
	printf '%-10s %5s %5s %-9s %11s %9s %9s %7s %9s %9s %8s %8s\n' \
		mode MiB conns pattern 'req/s' p50 p99 errors exits/req emul/req lwc/fork lwc/none
	for mib in "${mibs[@]}"; do
		for c in "${conns_list[@]}"; do
			for pat in "${patterns[@]}"; do
				for mode in "${modes[@]}"; do
					k="$mode $mib $c $pat"
					rf=
					rn=
					if [ "$mode" = lwc ]; then
						rf=$(ratio "${rps[$k]}" "${rps[fork $mib $c $pat]}")
						rn=$(ratio "${rps[$k]}" "${rps[none $mib $c $pat]}")
					fi
					printf '%-10s %5s %5s %-9s %11s %9s %9s %7s %9s %9s %8s %8s\n' "$mode" "$mib" "$c" "$pat" \
						"${rps[$k]}" "${p50[$k]}" "${p99[$k]}" "${errs[$k]}" "${exits[$k]}" "${emul[$k]}" "$rf" "$rn"
				done
			done
		done
	done
} | tee "$table"

# The plot: one cluster per (state, pattern, connections), one bar per mode.
{
	echo "run ${modes[*]}"
	for mib in "${mibs[@]}"; do
		for pat in "${patterns[@]}"; do
			for c in "${conns_list[@]}"; do
				line="${mib}MiB/${pat}/c${c}"
				for mode in "${modes[@]}"; do
					line+=" ${rps[$mode $mib $c $pat]}"
				done
				echo "$line"
			done
		done
	done
} >"$work/plot.dat"
mkdir -p "$(dirname "$plot")"
gnuplot <<EOF || die "gnuplot failed to write $plot"
set terminal pngcairo size 1200,600
set output '$plot'
set title "vmlwc-session-server: GET /hello under wrk, ${duration} s per run$([ "$quick" = 1 ] && echo ' (--quick)')"
set ylabel 'requests/s (log scale)'
set style data histograms
set style histogram clustered gap 1
set style fill solid border -1
set xtics rotate by -30
set key top right
# log scale: keep-alive and a connection per request differ by orders of magnitude
set logscale y
set yrange [1:*]
plot for [i=2:$((${#modes[@]} + 1))] '$work/plot.dat' using i:xtic(1) title columnheader
EOF
echo "bench/server.sh: table in $table, raw output in $raw, plot in $plot" >&2
