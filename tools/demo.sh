#!/bin/bash
# Installs what vmlwc needs, builds it, and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
tools/build.sh
tools/in-kvm.sh ./build/vmlwc-demo
