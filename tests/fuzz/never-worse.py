#!/usr/bin/env python3
"""Mutation harness: qblk's writes and repairs never make a damaged qcow2
image worse than it was. Each seed damages one or more metadata fields of a
small image made here with QEMU's tools, lets qblk (qblk-io: write, write -z,
discard, compressed write; qblk-img: check -r leaks|all, snapshot -c/-a/-d,
amend -o refcount_bits) act on one copy and
QEMU's tools do the same on another, and asserts on qblk's copy:
  - the tool ended by itself (timeout = failure) without a crash or a
    sanitizer report;
  - the header still probes as qcow2;
  - the file grew no more than QEMU's copy did (plus 4 MiB of slack);
  - repairability: if `qemu-img check -r all` repairs the damaged image to
    a clean one, it still does so after qblk acted;
  - with --strict-repair: a qblk-img check -r that exits 0 leaves an image
    Debian's qemu-img check finds clean.
Usage: never-worse.py BUILD_DIR FIRST_SEED LAST_SEED [--strict-repair] [--repair-only]
(--repair-only: every operation is a check -r)
Prints "ok/not ok N - seed S ..." per seed and "N passed, N failed"."""
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

TIMEOUT = 120       # seconds for one tool run; ASan builds are slow
SLACK = 4 << 20


def run(args, timeout=TIMEOUT):
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        return 124, "timed out after %d s" % timeout


def qemu(*args):
    rc, out = run(list(args))
    if rc not in (0, 1, 2, 3):
        raise RuntimeError("setup failed: %s: %s" % (" ".join(args), out))
    return rc, out


def make_bases(d):
    """Small images of several shapes, made by QEMU's own tools."""
    bases = []
    p = os.path.join(d, "data.qcow2")
    qemu("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", p, "4M")
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 1 0 64k", "-c", "write -z 128k 16k",
         "-c", "write -c -P 2 256k 8k", "-c", "write -P 3 3M 12k", p)
    qemu("qemu-img", "snapshot", "-c", "s1", p)
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 5 0 8k", p)
    bases.append(p)
    p = os.path.join(d, "bitmap.qcow2")
    qemu("qemu-img", "create", "-q", "-f", "qcow2", p, "64M")
    qemu("qemu-img", "bitmap", "--add", p, "b0")
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 1 0 256k", "-c", "write -P 2 40M 64k", p)
    bases.append(p)
    p = os.path.join(d, "v2.qcow2")
    qemu("qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10,cluster_size=512", p, "1M")
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 4 0 12k", "-c", "write -P 6 600k 3k", p)
    bases.append(p)
    return bases


class Layout:
    """Where an image's metadata fields are, read from its header."""

    def __init__(self, b):
        be = lambda fmt, off: struct.unpack_from(">" + fmt, b, off)[0]
        self.cs = 1 << be("I", 20)
        self.l1_off, self.l1_size = be("Q", 40), be("I", 36)
        self.rt_off, self.rt_clusters = be("Q", 48), be("I", 56)
        self.sn_off, self.nb_sn = be("Q", 64), be("I", 60)
        self.refblocks = [o for o in struct.unpack_from(">%dQ" % (self.cs // 8), b, self.rt_off)
                          if o and o + self.cs <= len(b)]
        self.l2s = [o & 0x00fffffffffffe00 for o in
                    struct.unpack_from(">%dQ" % self.l1_size, b, self.l1_off)]
        self.l2s = [o for o in self.l2s if o and o + self.cs <= len(b)]
        self.fields = []    # (offset, size) of every field a mutation may hit
        self.fields += [(o, 8) for o in (40, 48, 64)] + [(o, 4) for o in (36, 56, 60)]
        self.fields += [(self.rt_off + 8 * i, 8) for i in range(min(8, self.rt_clusters *
                                                                   self.cs // 8))]
        self.fields += [(self.l1_off + 8 * i, 8) for i in range(self.l1_size)]
        for rb in self.refblocks:
            self.fields += [(rb + 2 * i, 2) for i in range(min(64, self.cs // 2))]
        for l2 in self.l2s:
            self.fields += [(l2 + 8 * i, 8) for i in range(min(64, self.cs // 8))]


def mutate(b, r):
    lay = Layout(b)
    out = bytearray(b)
    if r.random() < 0.15:
        return bytes(out)   # an intact image must stay intact
    for _ in range(r.randint(1, 3)):
        kind = r.random()
        if kind < 0.2 and lay.refblocks:
            # A whole refcount block zeroed or filled.
            rb = r.choice(lay.refblocks)
            out[rb:rb + lay.cs] = bytes([r.choice([0, 0, 0xff])]) * lay.cs
            continue
        if kind < 0.3:
            # A refcount table entry far past the end of the file.
            at = lay.rt_off + 8 * r.randrange(min(4, lay.rt_clusters * lay.cs // 8))
            out[at:at + 8] = (r.randrange(1, 1 << 12) << 29).to_bytes(8, "big")
            continue
        off, size = r.choice(lay.fields)
        old = int.from_bytes(out[off:off + size], "big")
        cands = [0, old ^ (1 << r.randrange(size * 8)), r.getrandbits(size * 8),
                 r.randrange(0, max(len(b), 1) * 2) & ~(lay.cs - 1),
                 r.choice([lay.rt_off, lay.l1_off, 0] + lay.refblocks + lay.l2s) |
                 (old & (0xc0 << ((size - 1) * 8))),
                 (1 << r.randrange(9, size * 8)) - (r.random() < 0.5)]
        val = r.choice(cands) & ((1 << (size * 8)) - 1)
        out[off:off + size] = val.to_bytes(size, "big")
    return bytes(out)


def op_for(r, size, repair_only):
    off = r.randrange(0, size, 512)
    n = r.choice([512, 4096, 65536, 3 * 4096 + 512])
    n = min(n, size - off) or 512
    kind = r.choice(["write -P 0x55", "write -z", "write -z -u", "discard", "write -c -P 0x66",
                     "check -r all", "check -r leaks", "snapshot -c new", "snapshot -a s1",
                     "snapshot -d s1", "amend -o refcount_bits=8"])
    if repair_only:
        kind = r.choice(["check -r all", "check -r leaks"])
    if kind.split()[0] in ("check", "snapshot", "amend"):
        return kind, None
    if kind.startswith("write -c"):
        off, n = 0, 65536 if size >= 65536 else size
    return "%s %d %d" % (kind, off, n), off


def repaired_clean(path):
    """Does qemu-img check -r all leave this image clean?"""
    rc, _ = run(["qemu-img", "check", "-r", "all", path])
    rc2, _ = run(["qemu-img", "check", path])
    return rc2 == 0


def vsize(path):
    rc, out = run(["qemu-img", "info", "--output=json", path])
    for line in out.splitlines():
        if '"virtual-size"' in line:
            return int(line.split(":")[1].strip(" ,"))
    return 0


def main():
    build, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    strict_repair = "--strict-repair" in sys.argv
    repair_only = "--repair-only" in sys.argv
    qio, qimg = os.path.join(build, "qblk-io"), os.path.join(build, "qblk-img")
    d = tempfile.mkdtemp(prefix="qblk-never-worse.")
    passed = failed = 0
    try:
        bases = make_bases(d)
        for n, seed in enumerate(range(first, last + 1), 1):
            r = random.Random(seed)
            base = bases[seed % len(bases)]
            src = open(base, "rb").read()
            a = os.path.join(d, "a.qcow2")
            bq, cq = os.path.join(d, "qblk.qcow2"), os.path.join(d, "qemu.qcow2")
            data = mutate(src, r)
            for p in (a, bq, cq):
                open(p, "wb").write(data)
            size = vsize(a) or (1 << 20)
            cmd, _ = op_for(r, size, repair_only)
            if cmd.startswith("check"):
                mode = cmd.split()[-1]
                rc_b, out_b = run([qimg, "check", "-f", "qcow2", "-r", mode, bq])
                run(["qemu-img", "check", "-f", "qcow2", "-r", mode, cq])
            elif cmd.split()[0] in ("snapshot", "amend"):
                rc_b, out_b = run([qimg] + cmd.split() + [bq])
                run(["qemu-img"] + cmd.split() + [cq])
            else:
                rc_b, out_b = run([qio, "-f", "qcow2", "-c", cmd, bq])
                run(["qemu-io", "-f", "qcow2", "-c", cmd, cq])
            problems = []
            if rc_b == 124:
                problems.append("timed out")
            elif rc_b >= 128 or rc_b < 0:
                problems.append("crashed (exit %d)" % rc_b)
            if "Sanitizer" in out_b or "runtime error:" in out_b:
                problems.append("sanitizer report")
            if open(bq, "rb").read(4) != b"QFI\xfb":
                problems.append("header no longer probes as qcow2")
            grew = os.path.getsize(bq)
            allowed = max(os.path.getsize(a), os.path.getsize(cq)) + SLACK
            if grew > allowed:
                problems.append("file grew to %d bytes (QEMU's copy: %d)" %
                                (grew, os.path.getsize(cq)))
            if strict_repair and cmd.startswith("check") and rc_b == 0:
                rc, out = run(["qemu-img", "check", bq])
                if rc != 0:
                    problems.append("qblk-img %s exited 0, qemu-img check then exits %d" %
                                    (cmd, rc))
            if not problems and run(["qemu-img", "check", a])[0] == 0:
                rc, out = run(["qemu-img", "check", bq])
                if rc not in (0, 3):
                    problems.append("qemu-img check found the image clean before qblk's %s "
                                    "and exits %d after it" % (cmd, rc))
            if not problems and repaired_clean(a) and not repaired_clean(bq):
                problems.append("qemu-img check -r all repaired the damaged image, but not "
                                "after qblk's %s" % cmd)
            name = "seed %d (%s: %s)" % (seed, os.path.basename(base), cmd)
            if problems:
                failed += 1
                print("not ok %d - %s: %s" % (n, name, "; ".join(problems)))
                print("    " + out_b.strip().replace("\n", "\n    ")[:800])
                keep = os.path.join(tempfile.gettempdir(), "never-worse-seed%d.qcow2" % seed)
                open(keep, "wb").write(data)
                print("    damaged image kept as " + keep)
            else:
                passed += 1
                print("ok %d - %s" % (n, name))
            sys.stdout.flush()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("never-worse: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
