#!/bin/bash
# Starts a local 8-node network (c0 + s0, 4 nodes each) from a testnet dir.
# usage: scripts/cluster.sh start DIR IMPLS [PORT] | stop DIR | kill9 DIR ID | restart DIR ID
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
	echo "$impls" > "$dir/impls"
	mkdir -p "$dir/logs" "$dir/data"
	for id in "${ids[@]}"; do "$0" restart "$dir" "$id"; done
	;;
restart)
	id="$3"
	IFS=, read -ra L < <(cat "$dir/impls")
	for i in "${!ids[@]}"; do [ "${ids[$i]}" = "$id" ] && letter=${L[$i]}; done
	args=(--manifest "$dir/manifest.json" --node-id "$id" --keys "$dir/keys/$id" --data "$dir/data/$id" --log "$dir/logs/$id.log")
	case "$letter" in
	c) nohup "$here/bin/heraclius-node" "${args[@]}" >/dev/null 2>&1 & ;;
	a) (cd "$repo" && exec nohup .venv/bin/python -m impl_a.node "${args[@]}" >/dev/null 2>&1) & ;;
	b) (cd "$repo" && exec nohup .venv/bin/python -m impl_b.node "${args[@]}" >/dev/null 2>&1) & ;;
	esac
	echo $! > "$dir/$id.pid"
	;;
kill9)
	kill -9 "$(cat "$dir/$3.pid")"
	;;
stop)
	for id in "${ids[@]}"; do
		[ -f "$dir/$id.pid" ] && kill "$(cat "$dir/$id.pid")" 2>/dev/null
		rm -f "$dir/$id.pid"
	done
	;;
esac
