#!/bin/bash
# Interop check: 1 coordinator + 1 shard cluster of 4 nodes each, two nodes of
# each cluster run by impl_c and two by a Python implementation; puts and gets
# through every client (impl_c, impl_a, impl_b), then GET /log/<h> compared
# byte for byte across the members of each cluster.
# usage: scripts/mixed_cluster.sh [IMPLS] [PORT]   (default c,c,a,a,c,c,b,b 27200)
# Needs ./build.sh and the repository venv (./dev setup) for the Python nodes.
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
impls="${1:-c,c,a,a,c,c,b,b}"
port="${2:-27200}"
dir="$(mktemp -d /tmp/impl_c_mixed.XXXXXX)"
trap '"$here/scripts/cluster.sh" stop "$dir"' EXIT
"$here/scripts/cluster.sh" start "$dir" "$impls" "$port" || exit 1
M="$dir/manifest.json"
for i in $(seq 0 7); do
	p=$((port + i * 10 + 2))
	for t in $(seq 1 100); do curl -sf "127.0.0.1:$p/health" >/dev/null && break; sleep 0.2; done
done
fail=0
run() { echo "+ $*"; "$@" || fail=1; }
C="$here/bin/heraclius-client"
PA="$repo/.venv/bin/python -m impl_a.client"
PB="$repo/.venv/bin/python -m impl_b.client"
run "$C" --manifest "$M" --key "$dir/client-a.key" put mixed-key from-impl-c
run $PA --manifest "$M" --key "$dir/client-b.key" get mixed-key
run $PB --manifest "$M" --key "$dir/client-c.key" put mixed-key from-impl-b
run "$C" --manifest "$M" --key "$dir/client-a.key" get mixed-key
run "$C" --manifest "$M" --key "$dir/client-a.key" workload --ops 200 --concurrency 8
run $PA --manifest "$M" --key "$dir/client-b.key" workload --ops 200 --concurrency 8
run $PB --manifest "$M" --key "$dir/client-c.key" workload --ops 200 --concurrency 8
sleep 1
run "$here/scripts/check_logs.sh" "$M"
urls=""
for i in 0 1 4 5; do urls="$urls http://127.0.0.1:$((port + i * 10 + 2))/status"; done
(cd "$here" && run go run ./internal/statuscheck $urls)
[ $fail = 0 ] && echo "MIXED OK ($impls)" || echo "MIXED FAILED ($impls)"
exit $fail
