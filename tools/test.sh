#!/bin/bash
# Runs the whole test suite: installs what is missing, builds, runs every CTest suite on KVM.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
tools/build.sh
tools/in-kvm.sh ctest --test-dir build --output-on-failure --timeout 600
