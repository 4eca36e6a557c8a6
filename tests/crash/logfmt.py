"""Reads the log of the log-writes driver (layout: block/drivers/log-writes.h).

A truncated or corrupt log raises LogError naming the record and byte where
reading stopped; nothing past that point is trusted."""
import struct
import zlib
from collections import namedtuple

MAGIC = b"QBLKLOGW"
VERSION = 1
HEADER = 16
HEAD = 48

WRITE, ZERO, DISCARD, TRUNCATE, FLUSH, START, STREAM = range(1, 8)
OP_NAMES = {WRITE: "write", ZERO: "zero", DISCARD: "discard", TRUNCATE: "truncate",
            FLUSH: "flush", START: "start", STREAM: "stream"}
REQ_FUA = 0x10
REQ_MAY_UNMAP = 0x4

# idx: position in the log (0 = first record); pos: its byte offset.
Record = namedtuple("Record", "idx pos op stream flags ret seq offset length aux data")


class LogError(Exception):
    pass


def read_log(path):
    """All records of the log at path, in order."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < HEADER or buf[:8] != MAGIC:
        raise LogError(f"log {path}: not a log-writes log (no {MAGIC.decode()} header)")
    version, crc = struct.unpack_from("<II", buf, 8)
    if zlib.crc32(buf[:12]) != crc:
        raise LogError(f"log {path}: header at byte 0 is corrupt")
    if version != VERSION:
        raise LogError(f"log {path}: version {version} is not supported (expected {VERSION})")
    records = []
    pos = HEADER
    view = memoryview(buf)
    while pos < len(buf):
        n = len(records)
        if pos + HEAD > len(buf):
            raise LogError(f"log {path}: record {n} at byte {pos} is truncated")
        crc, op, stream, flags, dlen, ret, seq, offset, length, aux = \
            struct.unpack_from("<IBBHIiQQQQ", buf, pos)
        if pos + HEAD + dlen > len(buf):
            raise LogError(f"log {path}: record {n} at byte {pos} is truncated")
        if zlib.crc32(view[pos + 4:pos + HEAD + dlen]) != crc or op not in OP_NAMES:
            raise LogError(f"log {path}: record {n} at byte {pos} is corrupt")
        if op == WRITE and dlen != length:
            raise LogError(f"log {path}: record {n} at byte {pos} is corrupt "
                           f"(write of {length} bytes carries {dlen})")
        records.append(Record(n, pos, op, stream, flags, ret, seq, offset, length, aux,
                              bytes(view[pos + HEAD:pos + HEAD + dlen])))
        pos += HEAD + dlen
    return records


def streams(records):
    """{stream: (child driver, child filename)} from the STREAM records."""
    out = {}
    for r in records:
        if r.op == STREAM:
            drv, _, name = r.data.partition(b"\0")
            out[r.stream] = (drv.decode(), name.decode())
    return out


if __name__ == "__main__":
    import sys
    try:
        for r in read_log(sys.argv[1]):
            print(f"{r.idx:5} @{r.pos:<8} s{r.stream} {OP_NAMES[r.op]:8} seq={r.seq} "
                  f"off={r.offset} len={r.length} flags={r.flags:#x} ret={r.ret} aux={r.aux}")
    except LogError as e:
        print(e, file=sys.stderr)
        sys.exit(2)
