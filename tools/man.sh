#!/bin/bash
# Makes the man3 page of one docs/api page: NAME from its title and first line, sections from its
# "##" headings, links as plain names; lowdown renders it. Usage: tools/man.sh page.md out.3 [name [summary]]
set -euo pipefail
in=$1
out=$2
name=${3:-$(basename "$in" .md)}
summary=${4:-}
awk -v name="$name" -v summary="$summary" '
	NR == 1 && /^# / { next }
	!named && NF == 0 { next }
	!named && summary != "" { print "# NAME\n\n" name " \\- " summary "\n\n# DESCRIPTION\n"; named = 1 }
	!named { print "# NAME\n\n" name " \\- " $0 "\n"; named = 1; next }
	/^## / { sub(/^## /, ""); print "# " toupper($0); next }
	{ gsub(/\]\([^)]*\.md(#[^)]*)?\)/, "]"); gsub(/\[`/, "`"); gsub(/`\]/, "`"); print }
' "$in" | lowdown -s -Tman -m "title: $name" -m "section: 3" -m "source: vmlwc" -o "$out"
