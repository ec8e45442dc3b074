# Differential check of impl_c --serve against the impl_a and impl_b adapters (run as black boxes):
# vector inputs and random mutations; prints where impl_c differs from impl_a and impl_b when those two agree.
# usage: .venv/bin/python impl_c/scripts/differential.py [SEED]
import json, os, random, subprocess, sys, glob
random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
here = os.path.dirname(os.path.abspath(__file__)); repo = os.path.dirname(os.path.dirname(here)); root = repo + '/wire_spec/vectors'
reqs = []
for meta in glob.glob(root + '/codec/*/*/*/meta.json'):
    d = os.path.dirname(meta)
    msg = json.load(open(meta))['message']
    b = open(d + '/encoded.bin', 'rb').read()
    reqs.append({'op': 'decode', 'message': msg, 'hex': b.hex()})
    for _ in range(3):
        bb = bytearray(b)
        if bb:
            k = random.randrange(3)
            i = random.randrange(len(bb))
            if k == 0: bb[i] ^= 1 << random.randrange(8)
            elif k == 1: del bb[i]
            else: bb.insert(i, random.randrange(256))
        reqs.append({'op': 'decode', 'message': msg, 'hex': bytes(bb).hex()})
    if os.path.exists(d + '/decoded.json'):
        j = json.load(open(d + '/decoded.json'))
        reqs.append({'op': 'encode', 'message': msg, 'json': j})
        # mutate json: drop/alter a field
        if isinstance(j, dict) and j:
            k = random.choice(list(j))
            j2 = dict(j); v = j2[k]
            if isinstance(v, int): j2[k] = 0 if random.random() < .5 else v + 1
            elif isinstance(v, str): j2[k] = v.upper() if random.random() < .5 else ''
            elif isinstance(v, list): j2[k] = []
            elif isinstance(v, dict): j2[k] = {}
            reqs.append({'op': 'encode', 'message': msg, 'json': j2})

for d in glob.glob(root + '/compact/verify/*/*'):
    man = json.load(open(d + '/manifest.json')); ctx = json.load(open(d + '/context.json'))
    b = open(d + '/compact.bin', 'rb').read()
    for t in range(4):
        bb = bytearray(b)
        if t:
            i = random.randrange(len(bb)); bb[i] ^= 1 << random.randrange(8)
        reqs.append({'op': 'compact_verify', 'manifest': man, 'source': ctx['source'], 'destination': ctx['destination'], 'next_seq': ctx['next_seq'], 'compact': bytes(bb).hex()})
for d in glob.glob(root + '/qc/verify/*/*'):
    man = json.load(open(d + '/manifest.json'))
    h = open(d + '/header.bin', 'rb').read(); q = open(d + '/qc.bin', 'rb').read()
    hd = None
    reqs.append({'op': 'qc_verify', 'manifest': man, 'cluster': 'c0', 'header': h.hex(), 'qc': q.hex()})
for d in glob.glob(root + '/execution/*/*/*'):
    man = json.load(open(d + '/manifest.json')); meta = json.load(open(d + '/meta.json'))
    bs = [open(f, 'rb').read().hex() for f in sorted(glob.glob(d + '/batch_*.bin'))]
    reqs.append({'op': 'execute', 'manifest': man, 'cluster': meta['cluster'], 'batches': bs})
    if bs and bs[-1]:
        bb = bytearray(bytes.fromhex(bs[-1])); i = random.randrange(len(bb)); bb[i] ^= 1 << random.randrange(8)
        reqs.append({'op': 'execute', 'manifest': man, 'cluster': meta['cluster'], 'batches': bs[:-1] + [bytes(bb).hex()]})
for d in glob.glob(root + '/manifest/validate/*/*'):
    reqs.append({'op': 'manifest_validate', 'manifest': json.load(open(d + '/manifest.json'))})
for i, r in enumerate(reqs): r['id'] = i
inp = ''.join(json.dumps(r) + '\n' for r in reqs)
def run(cmd, cwd):
    p = subprocess.run(cmd, input=inp, capture_output=True, text=True, cwd=cwd)
    return [json.loads(l) for l in p.stdout.splitlines()]
c = run([repo + '/impl_c/bin/heraclius-conformance', '--serve'], repo)
others = {}
for impl in ['impl_a', 'impl_b']:
    others[impl] = run([repo + '/.venv/bin/python', '-m', impl + '.conformance', '--serve'], repo)

bad = 0; verdict_bad = 0; reason_only = 0
for i, r in enumerate(reqs):
    A, B, C = others['impl_a'][i], others['impl_b'][i], c[i]
    if A == B and C != A:
        a2, c2 = dict(A), dict(C)
        for x in (a2, c2): x.pop('reason', None)
        if a2 != c2:
            verdict_bad += 1
            if verdict_bad <= 10:
                print('VERDICT', json.dumps(r)[:400]); print('  c:', json.dumps(C)[:300]); print('  ab:', json.dumps(A)[:300])
        else:
            reason_only += 1
            if reason_only <= 6:
                print('REASON', json.dumps(r)[:300]); print('  c:', json.dumps(C)[:200]); print('  ab:', json.dumps(A)[:200])
print(len(reqs), 'requests; c differs from agreeing a+b: verdict/output', verdict_bad, 'reason only', reason_only)
