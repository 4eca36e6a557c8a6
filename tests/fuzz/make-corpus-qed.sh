#!/bin/bash
# Regenerates tests/fuzz/corpus/qed: small QED images (4 KiB clusters, 2-cluster
# tables) made by QEMU's tools, and damaged copies of them.
set -e
cd "$(dirname "$0")/corpus/qed"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
qemu-img create -f raw "$t/base.raw" 1M >/dev/null
qemu-img create -q -f qed -o cluster_size=4k,table_size=2 empty.qed 1M
qemu-img create -q -f qed -o cluster_size=4k,table_size=2 data.qed 1M
qemu-io -f qed -c "write -P 1 0 8k" -c "write -z 64k 16k" -c "write -P 2 900k 5k" data.qed >/dev/null
qemu-img create -q -f qed -o cluster_size=4k,table_size=2 -b "$t/base.raw" -F raw backing.qed 1M
qemu-io -f qed -c "write -P 3 4k 4k" backing.qed >/dev/null
python3 - <<'PY'
import struct
src = open("data.qed", "rb").read()
def variant(name, patches, cut=None):
    b = bytearray(src if cut is None else src[:cut])
    for off, fmt, val in patches:
        b[off:off + struct.calcsize(fmt)] = struct.pack("<" + fmt, val)
    open(name, "wb").write(b)
l1 = struct.unpack_from("<Q", src, 40)[0]
l2 = struct.unpack_from("<Q", src, l1)[0]
variant("bad-cluster-size.qed", [(4, "I", 3000)])
variant("bad-table-size.qed", [(8, "I", 5)])
variant("huge-image-size.qed", [(48, "Q", 1 << 60)])
variant("need-check.qed", [(16, "Q", 2)])
variant("backing-out-of-header.qed", [(16, "Q", 1), (56, "I", 4090), (60, "I", 100)])
variant("l1-outside.qed", [(l1, "Q", 1 << 40)])
variant("l2-outside.qed", [(l2, "Q", 1 << 40)])
variant("l2-unaligned.qed", [(l2 + 8, "Q", l2 + 3)])
variant("shared-cluster.qed", [(l2 + 8, "Q", struct.unpack_from("<Q", src, l2)[0])])
variant("truncated.qed", [], cut=6000)
PY
