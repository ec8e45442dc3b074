#!/bin/bash
# Compares GET /log/<h> byte for byte across the members of each cluster of a
# testnet manifest (heights 1 .. the lowest height of the cluster).
# usage: scripts/check_logs.sh MANIFEST
set -u
python3 - "$1" <<'PY'
import json, sys, urllib.request, hashlib
m = json.load(open(sys.argv[1]))
ok = True
for c in m["clusters"]:
    nodes = c["nodes"]
    def get(n, path):
        return urllib.request.urlopen(f"http://{n['host']}:{n['ports']['admin']}{path}", timeout=5).read()
    heights = {}
    for n in nodes:
        try:
            heights[n["id"]] = json.loads(get(n, "/status"))["height"]
        except Exception as e:
            print(f"{n['id']}: unreachable ({e})"); ok = False
    if not heights:
        continue
    low = min(heights.values())
    bad = 0
    for h in range(1, low + 1):
        digests = {}
        for n in nodes:
            if n["id"] in heights:
                digests[n["id"]] = hashlib.sha256(get(n, f"/log/{h}")).hexdigest()
        if len(set(digests.values())) != 1:
            bad += 1
            if bad < 5:
                print(f"{c['id']} height {h} differs: {digests}")
    impls = ",".join(n["implementation"] for n in nodes)
    print(f"{c['id']} ({impls}): heights {heights}; heights 1..{low} compared, {bad} differ")
    ok = ok and bad == 0
sys.exit(0 if ok else 1)
PY
