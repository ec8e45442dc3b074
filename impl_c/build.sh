#!/bin/sh
# Builds impl_c's three binaries into impl_c/bin (idempotent; offline once modules are cached).
set -e
cd "$(dirname "$0")"
mkdir -p bin
for c in heraclius-node heraclius-client heraclius-conformance; do
	if [ -d "cmd/$c" ]; then
		go build -trimpath -o "bin/$c" "./cmd/$c"
	fi
done
