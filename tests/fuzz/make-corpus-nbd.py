#!/usr/bin/env python3
"""Regenerates tests/fuzz/corpus/nbd: client streams for fuzz-nbd.c, each a
setup byte (the export: format, writable, copy-on-read, ... see fuzz-nbd.c)
then what the client sends: handshakes with each option, each command with
its flags, and broken ones (bad magics, lengths past the export or over
32 MiB, half headers, long names, option floods)."""
import os
import struct
import sys

# Setup byte bits (fuzz-nbd.c).
RAW, QCOW2, QED, QCOW2_512 = 0, 1, 2, 3
W, COR, DEPTH, WT, ODD, FILTER = 0x04, 0x08, 0x10, 0x20, 0x40, 0x80

OPTS_MAGIC = 0x49484156454F5054
REQ_MAGIC = 0x25609513
(OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_PEEK_EXPORT, OPT_STARTTLS, OPT_INFO, OPT_GO,
 OPT_STRUCTURED_REPLY, OPT_LIST_META, OPT_SET_META) = range(1, 11)
INFO_EXPORT, INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE = range(4)
READ, WRITE, DISC, FLUSH, TRIM, CACHE, WRITE_ZEROES, BLOCK_STATUS = range(8)
FUA, NO_HOLE, DF, REQ_ONE, FAST_ZERO = 0x01, 0x02, 0x04, 0x08, 0x10
MiB = 1 << 20
SIZE = 4 * MiB


def cflags(f=3):
    return struct.pack(">I", f)


def opt(code, data=b"", length=None):
    return struct.pack(">QII", OPTS_MAGIC, code, len(data) if length is None else length) + data


def name(s):
    s = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(s)) + s


def info_data(export, items=()):
    return name(export) + struct.pack(">H", len(items)) + b"".join(struct.pack(">H", i) for i in items)


def go(export="", items=()):
    return opt(OPT_GO, info_data(export, items))


def meta(code, export, queries):
    return opt(code, name(export) + struct.pack(">I", len(queries)) + b"".join(name(q) for q in queries))


def req(cmd, off=0, length=0, flags=0, handle=None, payload=b"", magic=REQ_MAGIC):
    handle = (0x1000 + cmd) if handle is None else handle
    return struct.pack(">IHHQQI", magic, flags, cmd, handle, off, length) + payload


def data(n, seed=0x5a):
    return bytes((seed + i) & 0xFF for i in range(n))


STRUCTURED = opt(OPT_STRUCTURED_REPLY)
ALL_META = meta(OPT_SET_META, "", ["base:allocation", "qemu:allocation-depth"])
DISCONNECT = req(DISC)

WRITE_CMDS = (req(WRITE, 4096, 4096, payload=data(4096)) +
              req(WRITE, 65536 - 100, 300, FUA, payload=data(300, 1)) +
              req(WRITE_ZEROES, MiB, 8192) +
              req(WRITE_ZEROES, 2 * MiB, 65536, NO_HOLE) +
              req(WRITE_ZEROES, 3 * MiB, 4096, FAST_ZERO) +
              req(WRITE_ZEROES, 0, 512, FUA | NO_HOLE) +
              req(TRIM, 32768, 8192) + req(TRIM, 3 * MiB, MiB, FUA) +
              req(FLUSH) + req(CACHE, 0, 2 * MiB) + req(READ, 0, 128 * 1024))

seeds = {
    # Handshakes.
    "empty": (RAW, b""),
    "flags-only": (RAW, cflags()),
    "export-name-read": (RAW, cflags() + opt(OPT_EXPORT_NAME, b"") + req(READ, 0, 4096) + DISCONNECT),
    "export-name-zeroes-padding": (QCOW2, cflags(1) + opt(OPT_EXPORT_NAME, b"fz") +
                                   req(READ, MiB - 512, 8192) + DISCONNECT),
    "export-name-unknown": (RAW, cflags() + opt(OPT_EXPORT_NAME, b"nope") + req(READ, 0, 512)),
    "export-name-5000": (RAW, cflags() + opt(OPT_EXPORT_NAME, b"n" * 5000)),
    "oldstyle-flags-0": (RAW, cflags(0) + go() + req(READ, 0, 512) + DISCONNECT),
    "bad-client-flags": (RAW, cflags(0xFFFFFFFF) + go()),
    "bad-option-magic": (RAW, cflags() + struct.pack(">QII", 0x1122334455667788, OPT_GO, 0)),
    "half-option-header": (RAW, cflags() + opt(OPT_LIST)[:11]),
    "half-option-data": (RAW, cflags() + opt(OPT_GO, info_data(""))[:20]),
    "option-too-long": (RAW, cflags() + opt(OPT_GO, length=32 * MiB + 1)),
    "option-32m-short": (RAW, cflags() + opt(OPT_LIST_META, length=32 * MiB) + b"\0" * 64),
    "list": (RAW, cflags() + opt(OPT_LIST) + opt(OPT_LIST, b"xx") + opt(OPT_ABORT)),
    "abort": (QCOW2, cflags() + opt(OPT_ABORT) + go()),
    "abort-with-data": (RAW, cflags() + opt(OPT_ABORT, b"junk")),
    "unsupported-options": (RAW, cflags() + opt(OPT_STARTTLS) + opt(OPT_PEEK_EXPORT) +
                            opt(99, b"abc") + opt(0xFFFFFFFF) + opt(0) + go() + DISCONNECT),
    "option-flood": (RAW, cflags() + opt(OPT_LIST) * 150 + opt(77, b"x" * 10) * 100 +
                     opt(OPT_INFO, info_data("fz", [INFO_NAME])) * 50 + go() + DISCONNECT),
    "info-items": (QED, cflags() + opt(OPT_INFO, info_data("fz", [INFO_NAME, INFO_DESCRIPTION,
                                                               INFO_BLOCK_SIZE, INFO_EXPORT, 99])) +
                   opt(OPT_INFO, info_data("")) + opt(OPT_INFO, info_data("nope", [INFO_NAME])) +
                   go("", [INFO_BLOCK_SIZE]) + req(READ, 512, 1024) + DISCONNECT),
    "info-qed-no-block-size": (QED, cflags() + opt(OPT_INFO, info_data("")) + go("") +
                               req(READ, 100, 1000) + req(READ, 0, 4096) + DISCONNECT),
    "info-bad-lengths": (RAW, cflags() +
                         opt(OPT_INFO, struct.pack(">I", 50) + b"ab") +       # name past the end
                         opt(OPT_INFO, name("") + struct.pack(">H", 3) + b"\0\1") +  # count mismatch
                         opt(OPT_INFO, b"\0\0") +                              # too short for a length
                         opt(OPT_GO, name("")) +                               # no item count
                         opt(OPT_INFO, name("n" * 4097) + b"\0\0") +           # name too long
                         go("fz") + req(READ, 0, 512) + DISCONNECT),
    "go-name-5000": (RAW, cflags() + go("n" * 5000) + go("") + DISCONNECT),
    "structured-twice": (QCOW2, cflags() + STRUCTURED + STRUCTURED + opt(OPT_STRUCTURED_REPLY, b"x") +
                         go() + req(READ, 0, 3 * MiB) + req(READ, 0, 3 * MiB, DF) +
                         req(READ, 2 * MiB - 4096, 65536, FUA) + req(READ, 0, 0) + DISCONNECT),
    "meta-list": (QCOW2 | DEPTH, cflags() + meta(OPT_LIST_META, "", []) +
                  meta(OPT_LIST_META, "", ["base:", "qemu:", "other:x"]) + STRUCTURED +
                  meta(OPT_LIST_META, "fz", ["qemu:allocation-depth"]) +
                  meta(OPT_LIST_META, "nope", []) + opt(OPT_ABORT)),
    "meta-set-unstructured": (QCOW2, cflags() + ALL_META + go() + req(BLOCK_STATUS, 0, SIZE) +
                              DISCONNECT),
    "meta-bad-lengths": (QCOW2 | DEPTH, cflags() + STRUCTURED +
                         opt(OPT_SET_META, name("") + struct.pack(">I", 2) + name("base:allocation")) +
                         opt(OPT_SET_META, name("") + struct.pack(">I", 1) + struct.pack(">I", 1000) + b"x") +
                         opt(OPT_SET_META, name("")) +
                         opt(OPT_SET_META, name("") + struct.pack(">I", 0) + b"trailing") +
                         meta(OPT_SET_META, "", ["q" * 5000]) +
                         meta(OPT_SET_META, "n" * 5000, ["base:allocation"]) +
                         go() + req(BLOCK_STATUS, 0, SIZE) + DISCONNECT),
    # Commands.
    "read-simple": (RAW, cflags() + go() + req(READ, 0, 65536) + req(READ, 100, 1) +
                    req(READ, 3 * MiB, MiB) + req(READ, 0, 0) + req(FLUSH) + DISCONNECT),
    "read-bad-flags": (RAW, cflags() + go() + req(READ, 0, 512, DF) + req(READ, 0, 512, NO_HOLE) +
                       req(WRITE, 0, 0, FAST_ZERO) + req(BLOCK_STATUS, 0, 512, REQ_ONE) +
                       req(9, 0, 512) + req(0xFFFF) + DISCONNECT),
    "read-only-writes": (QCOW2, cflags() + STRUCTURED + go() + req(WRITE, 0, 512, payload=data(512)) +
                         req(TRIM, 0, 4096) + req(WRITE_ZEROES, 0, 4096) + req(READ, 0, 4096) +
                         DISCONNECT),
    "past-end": (QCOW2 | W, cflags() + STRUCTURED + ALL_META + go() +
                 req(READ, SIZE, 1) + req(READ, 0, SIZE + 512) + req(READ, 1 << 63, 512) +
                 req(READ, 0xFFFFFFFFFFFFFFFF, 1) + req(READ, SIZE - 1, 0xFFFFFFFF) +
                 req(WRITE, SIZE - 256, 512, payload=data(512)) + req(TRIM, SIZE, 1) +
                 req(WRITE_ZEROES, SIZE - 512, 1024) + req(CACHE, SIZE + 512, 512) +
                 req(BLOCK_STATUS, SIZE - 512, 4096) + req(BLOCK_STATUS, SIZE, 1) +
                 req(READ, SIZE, 0) + DISCONNECT),
    "read-over-32m": (RAW, cflags() + STRUCTURED + go() + req(READ, 0, 32 * MiB + 1) +
                      req(CACHE, 0, 32 * MiB + 1) + req(READ, 0, 32 * MiB) + DISCONNECT),
    "write-over-32m": (RAW | W, cflags() + go() + req(WRITE, 0, 32 * MiB + 1) + req(READ, 0, 512)),
    "write-32m-short-payload": (RAW | W, cflags() + go() + req(WRITE, 0, 32 * MiB) + data(4096)),
    "write-short-payload": (QCOW2 | W, cflags() + go() + req(WRITE, 4096, 65536) + data(1000)),
    "half-request-header": (RAW, cflags() + go() + req(READ, 0, 512)[:10]),
    "bad-request-magic": (RAW, cflags() + STRUCTURED + go() + req(READ, 0, 512, magic=0x25609514) +
                          req(READ, 0, 512)),
    "bad-request-magic-simple": (RAW, cflags() + go() + req(READ, 0, 512, magic=0x67446698)),
    "disc-fua-in-flight": (QCOW2 | W, cflags() + go() + req(WRITE, 0, 8192, payload=data(8192)) +
                           req(READ, 0, 65536) + req(DISC, flags=FUA) + req(READ, 0, 512)),
    "many-in-flight": (QCOW2_512 | DEPTH, cflags() + STRUCTURED + ALL_META + go() +
                       b"".join(req(READ, i * 65536, MiB, handle=i) for i in range(40)) +
                       b"".join(req(BLOCK_STATUS, i * 4096, 3 * MiB, handle=100 + i) for i in range(20)) +
                       DISCONNECT),
    "zero-length": (QCOW2 | W, cflags() + STRUCTURED + ALL_META + go() + req(WRITE, 0, 0) +
                    req(TRIM, 0, 0) + req(WRITE_ZEROES, 0, 0) + req(CACHE, 0, 0) +
                    req(BLOCK_STATUS, 0, 0) + req(READ, SIZE, 0) + DISCONNECT),
}

# Each format, writable, simple and structured replies.
for fmt, label in ((RAW, "raw"), (QCOW2, "qcow2"), (QED, "qed"), (QCOW2_512, "qcow2-512")):
    seeds["writes-simple-" + label] = (fmt | W, cflags() + go() + WRITE_CMDS + DISCONNECT)
    seeds["writes-structured-" + label] = (fmt | W | DEPTH, cflags() + STRUCTURED + ALL_META + go() +
                                           WRITE_CMDS + req(BLOCK_STATUS, 0, SIZE) + DISCONNECT)
    seeds["block-status-" + label] = (fmt | DEPTH, cflags() + STRUCTURED + ALL_META + go() +
                                      req(BLOCK_STATUS, 0, SIZE) +
                                      req(BLOCK_STATUS, 0, SIZE, REQ_ONE) +
                                      req(BLOCK_STATUS, MiB - 100, 200000, FUA) +
                                      req(READ, 0, SIZE) + DISCONNECT)
    seeds["cor-" + label] = (fmt | COR | DEPTH, cflags() + STRUCTURED + ALL_META + go() +
                             req(READ, 0, SIZE // 2) + req(CACHE, SIZE // 2, SIZE // 2) +
                             req(READ, 0, SIZE // 2) + req(BLOCK_STATUS, 0, SIZE) + DISCONNECT)

seeds["base-allocation-only"] = (QED, cflags() + STRUCTURED +
                                 meta(OPT_SET_META, "", ["base:allocation"]) + go("", [INFO_BLOCK_SIZE]) +
                                 req(BLOCK_STATUS, 0, SIZE) + DISCONNECT)
seeds["depth-only-export-name"] = (QCOW2 | DEPTH, cflags() + STRUCTURED +
                                   meta(OPT_SET_META, "", ["qemu:allocation-depth"]) +
                                   opt(OPT_EXPORT_NAME, b"") + req(BLOCK_STATUS, 0, SIZE) + DISCONNECT)
seeds["meta-other-export"] = (QCOW2, cflags() + STRUCTURED + meta(OPT_SET_META, "fz", ["base:allocation"]) +
                              go("") + req(BLOCK_STATUS, 0, SIZE) + DISCONNECT)
seeds["odd-size-writethrough"] = (RAW | W | ODD | WT | FILTER, cflags() + opt(OPT_INFO, info_data("")) + go() +
                                  req(WRITE, SIZE - 512, 512, payload=data(512)) +
                                  req(READ, SIZE - 512, 512) + req(READ, SIZE - 512, 1000) +
                                  req(WRITE_ZEROES, SIZE - 4096, 4096, FUA) + DISCONNECT)
seeds["odd-size-qcow2"] = (QCOW2 | W | ODD | COR, cflags() + STRUCTURED + ALL_META + go() +
                           req(READ, SIZE - 4096, 4096) + req(BLOCK_STATUS, 0, SIZE) +
                           req(TRIM, 0, SIZE) + req(BLOCK_STATUS, 0, SIZE) + DISCONNECT)

# A copy-on-read filter exported (the daemon's guest copy-on-read): reads
# and BLOCK_STATUS populate the overlay.
for fmt, label in ((QCOW2, "qcow2"), (QED, "qed"), (QCOW2_512, "qcow2-512")):
    seeds["cor-filter-" + label] = (fmt | FILTER | DEPTH, cflags() + STRUCTURED + ALL_META + go() +
                                    req(BLOCK_STATUS, 0, SIZE) + req(BLOCK_STATUS, MiB, 4096, REQ_ONE) +
                                    req(READ, 0, SIZE // 2) + req(CACHE, SIZE // 2, MiB) +
                                    req(BLOCK_STATUS, 0, SIZE) + DISCONNECT)
seeds["cor-filter-writes"] = (QCOW2 | FILTER | W | DEPTH, cflags() + STRUCTURED + ALL_META + go() +
                              WRITE_CMDS + req(BLOCK_STATUS, 0, SIZE) + DISCONNECT)
seeds["cor-filter-simple-cor"] = (QED | FILTER | COR, cflags() + go() + req(READ, 0, SIZE) +
                                  req(READ, MiB - 512, 4096) + DISCONNECT)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "nbd")
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.unlink(os.path.join(out, f))
    for label, (setup, stream) in sorted(seeds.items()):
        with open(os.path.join(out, label), "wb") as f:
            f.write(bytes([setup]) + stream)
    print(f"{len(seeds)} seeds in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
