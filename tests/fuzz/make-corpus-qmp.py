#!/usr/bin/env python3
# Regenerates tests/fuzz/corpus/qmp from the tests/qmp scripts (the recorded
# qemu-storage-daemon transcript among them): per script and client, what
# that client sends ("-> " and "send" lines; "sendbig" left out), with the
# scripts' $D/ dropped so file names stay in the fuzzer's own directory.
import glob
import os
import re

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, 'corpus', 'qmp')
os.makedirs(out, exist_ok=True)
for f in glob.glob(os.path.join(out, '*')):
    os.unlink(f)
for script in sorted(glob.glob(os.path.join(here, '..', 'qmp', '[0-9][0-9][0-9]-*'))):
    if script.endswith('.out'):
        continue
    name = os.path.basename(script)
    clients, cur = {}, None
    for line in open(script):
        line = line.rstrip('\n')
        m = re.match(r'(connect|client) (\w+)', line)
        if m:
            cur = m.group(2)
            clients.setdefault(cur, [])
        elif line.startswith('-> ') and cur:
            clients[cur].append(line[3:] + '\n')
        elif line.startswith('send ') and cur:
            clients[cur].append(line[5:].encode().decode('unicode_escape'))
    for client, parts in clients.items():
        data = ''.join(parts).replace('$D/', '')
        if data:
            with open(os.path.join(out, '%s-%s' % (name, client)), 'w') as f:
                f.write(data)
