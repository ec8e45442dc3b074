#!/bin/bash
# Crash test on a network started by scripts/cluster.sh: ROUNDS times, kill -9
# one random node of each cluster, wait, restart them (at most f = 1 down per
# cluster at any time). Run workloads meanwhile, then scripts/check_logs.sh and
# `heraclius-ops check-history` on the --history files.
# usage: scripts/chaos.sh DIR [ROUNDS]
set -u
here="$(cd "$(dirname "$0")" && pwd)"
D="$1"; rounds="${2:-8}"
ids=(c0-n0 c0-n1 c0-n2 c0-n3 s0-n0 s0-n1 s0-n2 s0-n3)
for round in $(seq 1 "$rounds"); do
	a=${ids[$((RANDOM % 4))]}; b=${ids[$((4 + RANDOM % 4))]}
	"$here/cluster.sh" kill9 "$D" "$a"; "$here/cluster.sh" kill9 "$D" "$b"
	echo "round $round: killed $a $b"
	sleep 4
	"$here/cluster.sh" restart "$D" "$a"; "$here/cluster.sh" restart "$D" "$b"
	sleep 5
done
