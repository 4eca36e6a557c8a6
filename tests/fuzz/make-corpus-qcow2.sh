#!/bin/bash
# Regenerates tests/fuzz/corpus/qcow2: small qcow2 images (4 KiB clusters)
# made by QEMU's tools — data, zero and compressed clusters, a snapshot, a
# backing file — and damaged copies, one defect each (iotest 027 opens
# every one of them too).
set -e
cd "$(dirname "$0")/corpus/qcow2"
rm -f ./*.qcow2
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
qemu-img create -f raw "$t/base.raw" 1M >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=4k empty.qcow2 1M
qemu-img create -q -f qcow2 -o cluster_size=4k,compat=0.10 v2.qcow2 1M
qemu-io -f qcow2 -c "write -P 4 0 12k" v2.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=4k data.qcow2 1M
qemu-io -f qcow2 -c "write -P 1 0 8k" -c "write -z 64k 16k" -c "write -c -P 2 128k 4k" \
    -c "write -P 3 900k 5k" data.qcow2 >/dev/null
qemu-img snapshot -c s1 data.qcow2
qemu-io -f qcow2 -c "write -P 5 0 4k" data.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=4k -b "$t/base.raw" -F raw backing.qcow2 1M
qemu-io -f qcow2 -c "write -P 3 4k 4k" backing.qcow2 >/dev/null
python3 - <<'PY'
import struct
src = open("data.qcow2", "rb").read()
be = lambda fmt, off: struct.unpack_from(">" + fmt, src, off)[0]
def variant(name, patches, cut=None):
    b = bytearray(src if cut is None else src[:cut])
    for off, fmt, val in patches:
        b[off:off + struct.calcsize(">" + fmt)] = struct.pack(">" + fmt, val)
    open(name, "wb").write(b)
l1 = be("Q", 40)
rt = be("Q", 48)
snaps = be("Q", 64)
l2 = be("Q", l1) & 0x00fffffffffffe00
data0 = be("Q", l2) & 0x00fffffffffffe00
comp = l2 + 8 * (128 // 4)
variant("bad-magic.qcow2", [(0, "I", 0x514649fa)])
variant("bad-version.qcow2", [(4, "I", 4)])
variant("cluster-bits-8.qcow2", [(20, "I", 8)])
variant("cluster-bits-22.qcow2", [(20, "I", 22)])
variant("header-length-short.qcow2", [(100, "I", 96)])
variant("unknown-incompat.qcow2", [(72, "Q", 1 << 40)])
variant("extended-l2.qcow2", [(72, "Q", 0x10)])
variant("corrupt-bit.qcow2", [(72, "Q", 0x2)])
variant("refcount-order-7.qcow2", [(96, "I", 7)])
variant("l1-outside.qcow2", [(40, "Q", 1 << 40)])
variant("l1-too-small.qcow2", [(36, "I", 0)])
variant("l1-huge.qcow2", [(36, "I", 1 << 30)])
variant("reftable-unaligned.qcow2", [(48, "Q", rt + 512)])
variant("reftable-huge.qcow2", [(56, "I", 1 << 20)])
variant("refblock-unaligned.qcow2", [(rt, "Q", be("Q", rt) + 8)])
variant("snapshots-huge.qcow2", [(60, "I", 1 << 20)])
variant("snapshot-extra-huge.qcow2", [(snaps + 36, "I", 1 << 20)])
variant("snapshot-l1-outside.qcow2", [(snaps, "Q", 1 << 40)])
variant("ext-length-past-cluster.qcow2", [(0x70, "I", 0x12345678), (0x70 + 4, "I", 0x10000)])
variant("backing-outside-cluster.qcow2", [(8, "Q", 4000), (16, "I", 500)])
variant("l2-outside.qcow2", [(l1, "Q", (1 << 63) | (1 << 40))])
variant("l2-unaligned.qcow2", [(l1, "Q", (1 << 63) | (l2 + 512))])
variant("data-unaligned.qcow2", [(l2, "Q", (1 << 63) | (data0 + 512))])
variant("data-outside.qcow2", [(l2, "Q", (1 << 63) | (1 << 40))])
variant("compressed-past-end.qcow2", [(comp, "Q", (1 << 62) | (len(src) + 4096))])
variant("data-on-refblock.qcow2", [(l2, "Q", (1 << 63) | be("Q", rt))])
variant("data-on-l1.qcow2", [(l2, "Q", (1 << 63) | l1)])
variant("shared-cluster.qcow2", [(l2 + 8 * 3, "Q", be("Q", l2))])
variant("truncated.qcow2", [], cut=6000)
PY
