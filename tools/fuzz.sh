#!/bin/bash
# Fuzzes the host side's doorbell paths (redirected syscalls and lwC calls, host-only: no KVM)
# with libFuzzer for the given time, with AddressSanitizer and UBSan on the host library.
# New inputs that add coverage are merged (minimized) into tests/fuzz/corpus/port, which CI
# replays (CTest fuzz_corpus_port). Usage: tools/fuzz.sh [seconds] [jobs]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
jobs=${2:-1}
command -v clang >/dev/null || { echo "tools/fuzz.sh: needs clang (apt-get install clang)" >&2; exit 2; }
mkdir -p build-fuzz
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMLWC_BUILD_TESTS=OFF \
	-DVMLWC_FUZZ=ON -DVMLWC_SANITIZE="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
	>build-fuzz/build.log 2>&1
cmake --build build-fuzz -j"$(nproc)" --target fuzz-port >>build-fuzz/build.log 2>&1 ||
	{ cat build-fuzz/build.log >&2; exit 1; }
corpus=tests/fuzz/corpus/port
work=build-fuzz/corpus-port
mkdir -p "$corpus" "$work" build-fuzz/crashes
ulimit -n 4096 2>/dev/null || true
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "tools/fuzz.sh: fuzzing for ${secs} s with ${jobs} job(s)" >&2
rc=0
par=()
[ "$jobs" -gt 1 ] && par=(-jobs="$jobs" -workers="$jobs")
build-fuzz/fuzz-port -max_total_time="$secs" -max_len=4096 -timeout=20 "${par[@]}" \
	-artifact_prefix=build-fuzz/crashes/ -print_final_stats=1 "$work" "$corpus" 2>&1 |
	tee build-fuzz/fuzz.log | grep -E "^#[0-9]+ +(DONE|INITED)|stat::|ERROR|SUMMARY|crash-|Done" >&2 || rc=$?
# the new inputs that add coverage, minimized, join the checked-in corpus
build-fuzz/fuzz-port -merge=1 "$corpus" "$work" >/dev/null 2>&1 || true
ls build-fuzz/crashes/ 2>/dev/null | grep -q . && { echo "tools/fuzz.sh: CRASHES in build-fuzz/crashes/" >&2; exit 1; }
echo "tools/fuzz.sh: no crash; corpus: $(ls "$corpus" | wc -l) inputs" >&2
exit $rc
