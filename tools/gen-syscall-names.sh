#!/bin/sh
# Generates syscall_names.h (number -> name) from the kernel's asm/unistd_64.h.
set -eu
in=$1
out=$2
{
  echo "/* Generated from $in: syscall names for traces. */"
  echo "static const char *const syscall_names[] = {"
  sed -n 's/^#define __NR_\([a-z0-9_]*\)[[:space:]]\{1,\}\([0-9]\{1,\}\)$/\t[\2] = "\1",/p' "$in"
  echo "};"
} > "$out.tmp"
mv "$out.tmp" "$out"
