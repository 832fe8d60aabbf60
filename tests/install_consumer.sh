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
# only the API is exported
nm -D --defined-only "$tmp/prefix/lib/libvmlwc.so" | awk '{print $3}' | grep -v -E '^(vmlwc_|lwc_|VMLWC_0)' && exit 1
echo "install_consumer: ok"
