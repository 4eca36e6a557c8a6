#!/usr/bin/env python3
"""Differential test: seeded random sequences of write, write -z (aligned
and not), discard, truncate (grow) and copy-on-read reads on a QED or
qcow2 image over a raw backing file, mirrored on a plain bytearray model.
After each sequence the image must equal the model (qemu-img compare) and
both qblk-img check and qemu-img check must find it clean.

usage: model.py VARIANT QBLK_IO QBLK_IMG WORKDIR SEED [SEED...]
VARIANT: qed, qcow2 (v3, 64 KiB clusters), qcow2-v2, qcow2-512, qcow2-2M.
Prints "seed N: ok" or "seed N: FAIL ..." (with the ops to reproduce).
Every tool call is killed after QBLK_TOOL_TIMEOUT seconds (default 120),
which fails the seed."""
import os
import random
import subprocess
import sys

# variant: (format, create options, cluster size)
VARIANTS = {
    "qed": ("qed", [], 65536),
    "qcow2": ("qcow2", [], 65536),
    "qcow2-v2": ("qcow2", ["-o", "compat=0.10"], 65536),
    "qcow2-512": ("qcow2", ["-o", "cluster_size=512"], 512),
    "qcow2-2M": ("qcow2", ["-o", "cluster_size=2M"], 2 * 1024 * 1024),
}


TIMEOUT = int(os.environ.get("QBLK_TOOL_TIMEOUT", "120"))


def run(cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "TIMEOUT: killed after %d s" % TIMEOUT)


def one_seed(variant, qio, qimg, work, seed):
    fmt, create_opts, cluster = VARIANTS[variant]
    rnd = random.Random(seed)
    base = os.path.join(work, "base.raw")
    img = os.path.join(work, "t." + fmt)
    model_path = os.path.join(work, "model.raw")
    size = rnd.choice([1, 2, 4]) * 1024 * 1024
    # Backing file: data, zero and hole chunks at cluster and sub-cluster grain.
    model = bytearray(size)
    pos = 0
    while pos < size:
        n = min(rnd.choice([4096, 65536, 100000, 262144]), size - pos)
        if rnd.random() < 0.5:
            model[pos:pos + n] = bytes([rnd.randrange(1, 256)]) * n
        pos += n
    bsize = size - rnd.choice([0, 0, 65536, 12288])   # backing may be shorter
    for i in range(bsize, size):
        model[i] = 0
    with open(base, "wb") as f:
        f.write(model[:bsize])
    backing = bytes(model)      # what unallocated clusters read
    for p in (img,):
        if os.path.exists(p):
            os.unlink(p)
    r = run([qimg, "create", "-q", "-f", fmt] + create_opts +
            ["-b", base, "-F", "raw", img, str(size)])
    if r.returncode:
        return "create failed: " + r.stdout
    ops = []
    for _ in range(rnd.randrange(10, 40)):
        kind = rnd.choice(["write", "write", "zero", "zero-aligned", "discard", "cor", "grow",
                           "aio"])
        cur = len(model)
        if kind == "grow":
            if rnd.random() < 0.3:
                new = cur + rnd.choice([512, 65536, 1048576, 3 * 4096])
                ops.append("truncate %d" % new)
                model.extend(bytes(new - cur))
                backing += bytes(new - cur)
            continue
        if kind == "aio":
            # Several writes in flight at once into the same few clusters,
            # at disjoint offsets (so the result does not depend on order).
            span = min(cur, cluster * rnd.choice([1, 2, 3]))
            base_off = rnd.randrange(0, cur - span + 1)
            cuts = sorted(rnd.sample(range(1, span), min(span - 1, rnd.randrange(2, 9))))
            bounds = [0] + cuts + [span]
            pieces = list(zip(bounds, bounds[1:]))
            rnd.shuffle(pieces)
            for a, b in pieces[:rnd.randrange(1, len(pieces) + 1)]:
                pat = rnd.randrange(0, 256)
                ops.append("aio_write -q -P %d %d %d" % (pat, base_off + a, b - a))
                model[base_off + a:base_off + b] = bytes([pat]) * (b - a)
            ops.append("aio_flush")
            continue
        off = rnd.randrange(0, cur)
        length = rnd.randrange(1, min(cur - off, 300000) + 1)
        if kind == "zero-aligned":
            off = off // cluster * cluster
            length = max(cluster, length // cluster * cluster)
            length = min(length, cur - off)
        if kind == "write":
            pat = rnd.randrange(0, 256)
            ops.append("write -P %d %d %d" % (pat, off, length))
            model[off:off + length] = bytes([pat]) * length
        elif kind in ("zero", "zero-aligned"):
            ops.append("write -z %s%d %d" % ("-u " if rnd.random() < 0.5 else "", off, length))
            model[off:off + length] = bytes(length)
        elif kind == "discard":
            ops.append("discard %d %d" % (off, length))
            # QED ignores discard. qcow2 empties the whole clusters inside
            # the range: v3 makes them zero clusters, v2 (no zero flag)
            # leaves them unallocated, showing the backing file again.
            start = -(-off // cluster) * cluster
            end = (off + length) // cluster * cluster
            if fmt == "qcow2" and end > start:
                if "compat=0.10" in create_opts:
                    model[start:end] = backing[start:end]
                else:
                    model[start:end] = bytes(end - start)
        else:
            ops.append("read -C %d %d" % (off, length))
    # Copy-on-read for the whole session half of the time.
    args = [qio, "-f", fmt] + (["-C"] if rnd.random() < 0.5 else [])
    for op in ops:
        if op.startswith("read -C"):
            op = "read " + op[len("read -C "):]
            args = args if "-C" in args else args[:3] + ["-C"] + args[3:]
        args += ["-c", op]
    args.append(img)
    r = run(args)
    if r.returncode:
        return "qblk-io failed (exit %d): %s\nops: %s" % (r.returncode, r.stdout[-2000:], ops)
    with open(model_path, "wb") as f:
        f.write(model)
    for cmd in ([qimg, "check", img], ["qemu-img", "check", img],
                ["qemu-img", "compare", "-f", fmt, "-F", "raw", img, model_path]):
        r = run(cmd)
        if r.returncode:
            return "%s: %s\nops: %s" % (" ".join(cmd[:2]), r.stdout.strip(), ops)
    return None


def main():
    variant, qio, qimg, work = sys.argv[1:5]
    failed = 0
    for seed in sys.argv[5:]:
        err = one_seed(variant, qio, qimg, work, int(seed))
        if err:
            failed += 1
            print("seed %s: FAIL %s" % (seed, err))
        else:
            print("seed %s: ok" % seed)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
