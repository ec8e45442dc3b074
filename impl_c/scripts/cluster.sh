#!/bin/bash
# Starts a local 8-node network (c0 + s0, 4 nodes each) from a testnet dir.
# usage: scripts/cluster.sh start DIR IMPLS | stop DIR
# IMPLS: 8 letters (c = impl_c, a = impl_a, b = impl_b), e.g. c,c,a,a,c,c,b,b
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
cmd="$1"; dir="$2"
ids=(c0-n0 c0-n1 c0-n2 c0-n3 s0-n0 s0-n1 s0-n2 s0-n3)
case "$cmd" in
start)
	impls="$3"; port="${4:-27000}"
	(cd "$here" && go run ./internal/testnet -dir "$dir" -impls "$impls" -port "$port") || exit 1
	IFS=, read -ra L <<< "$impls"
	mkdir -p "$dir/logs" "$dir/data"
	for i in "${!ids[@]}"; do
		id=${ids[$i]}
		args=(--manifest "$dir/manifest.json" --node-id "$id" --keys "$dir/keys/$id" --data "$dir/data/$id" --log "$dir/logs/$id.log")
		case "${L[$i]}" in
		c) "$here/bin/heraclius-node" "${args[@]}" & ;;
		a) (cd "$repo" && exec .venv/bin/python -m impl_a.node "${args[@]}") & ;;
		b) (cd "$repo" && exec .venv/bin/python -m impl_b.node "${args[@]}") & ;;
		esac
		echo $! > "$dir/$id.pid"
	done
	;;
stop)
	for id in "${ids[@]}"; do
		[ -f "$dir/$id.pid" ] && kill "$(cat "$dir/$id.pid")" 2>/dev/null
		rm -f "$dir/$id.pid"
	done
	;;
esac
