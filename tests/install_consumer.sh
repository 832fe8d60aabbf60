#!/bin/sh
# Packaging check: install into a temporary prefix, then build a consumer with find_package and pkg-config.
set -eu
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
mkdir -p "$tmp/consumer"
cat > "$tmp/consumer/CMakeLists.txt" <<'EOT'
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(vmlwc 0.2 REQUIRED)
add_executable(consumer main.c)
target_link_libraries(consumer PRIVATE vmlwc::vmlwc)
EOT
cat > "$tmp/consumer/main.c" <<'EOT'
#include <stdio.h>
#include <string.h>
#include <vmlwc.h>
int main(void)
{
#if !VMLWC_CHECK_VERSION(0, 2) || VMLWC_CHECK_VERSION(0, 99) || VMLWC_CHECK_VERSION(1, 0)
	return 2;
#endif
	if (!vmlwc_check_version(VMLWC_VERSION_MAJOR, VMLWC_VERSION_MINOR) || vmlwc_check_version(0, 99) ||
	    vmlwc_check_version(1, 0) || vmlwc_major_version() != VMLWC_VERSION_MAJOR ||
	    vmlwc_minor_version() != VMLWC_VERSION_MINOR)
		return 3;
	return strcmp(vmlwc_version(), "0.2.0") != 0 || VMLWC_VERSION_MAJOR != 0;
}
EOT
cmake -S "$tmp/consumer" -B "$tmp/consumer/b" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer/b" >/dev/null
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/consumer/b/consumer"
# pkg-config names the library and its include directory
PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --libs vmlwc | grep -q -- "-lvmlwc"
cc -o "$tmp/pc" "$tmp/consumer/main.c" -I"$tmp/prefix/include" -L"$tmp/prefix/lib" -lvmlwc
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/pc"
# only the API is exported, from the shared library and from the archive: exactly the symbols
# the version script lists
api=$(sed -n 's/^ *\([a-z_]*\);$/\1/p' "$(dirname "$0")/../libvmlwc/vmlwc.map" | sort)
so=$(nm -D --defined-only "$tmp/prefix/lib/libvmlwc.so" | awk '$3 != "VMLWC_0" {sub(/@.*/, "", $3); print $3}' | sort)
[ "$so" = "$api" ] || { echo "install_consumer: libvmlwc.so exports:"; echo "$so"; exit 1; }
ar=$(nm -g --defined-only "$tmp/prefix/lib/libvmlwc.a" | awk 'NF == 3 {print $3}' | sort)
[ "$ar" = "$api" ] || { echo "install_consumer: libvmlwc.a exports:"; echo "$ar" | head -20; exit 1; }
# a program linked statically against the archive
cc -o "$tmp/st" "$tmp/consumer/main.c" -I"$tmp/prefix/include" "$tmp/prefix/lib/libvmlwc.a" \
	$(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --static --libs-only-l vmlwc | sed 's/-lvmlwc//')
"$tmp/st"
# a man page per call of the API, and vmlwc(3)
for f in $api vmlwc; do
	case $f in vmlwc_major_version|vmlwc_minor_version|vmlwc_check_version) continue ;; esac
	grep -q '^\.TH' "$tmp/prefix/share/man/man3/$f.3" || { echo "install_consumer: no man page $f(3)"; exit 1; }
done
echo "install_consumer: ok"
