"""Reads the log of the log-writes driver (layout: block/drivers/log-writes.h),
and appends to a shared one (LogAppender: an NBD client's guest stream).

A truncated or corrupt log raises LogError naming the record and byte where
reading stopped; nothing past that point is trusted. Version 1 and 2 logs
are read alike: a version 2 FLUSH names a byte offset, which read_log turns
into the record count version 1 stores."""
import bisect
import fcntl
import os
import struct
import zlib
from collections import namedtuple

MAGIC = b"QBLKLOGW"
VERSION = 1
VERSION_APPEND = 2      # shared by processes (append=on); FLUSH aux is a byte offset
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
    if version not in (VERSION, VERSION_APPEND):
        raise LogError(f"log {path}: version {version} is not supported "
                       f"(expected {VERSION} or {VERSION_APPEND})")
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
    if version == VERSION_APPEND:
        starts = [r.pos for r in records]
        at_start = set(starts) | {HEADER}
        for i, r in enumerate(records):
            if r.op == FLUSH:
                if r.aux > r.pos or r.aux not in at_start:
                    raise LogError(f"log {path}: record {r.idx} at byte {r.pos} is corrupt "
                                   f"(a flush covering up to byte {r.aux}, not a record's start)")
                records[i] = r._replace(aux=bisect.bisect_left(starts, r.aux))
    return records


def streams(records):
    """{stream: (child driver, child filename)} from the STREAM records."""
    out = {}
    for r in records:
        if r.op == STREAM:
            drv, _, name = r.data.partition(b"\0")
            out[r.stream] = (drv.decode(), name.decode())
    return out


class LogAppender:
    """One stream of a version 2 log that other processes append to too
    (log-writes append=on): each record is one write on an O_APPEND
    descriptor under flock, as the driver writes them, so a record appended
    after a reply follows all the server appended before replying."""

    def __init__(self, path, driver, name):
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self.seq = 0
        with self._locked():
            size = os.fstat(self.fd).st_size
            if size == 0:
                head = MAGIC + struct.pack("<I", VERSION_APPEND)
                os.write(self.fd, head + struct.pack("<I", zlib.crc32(head)))
                used = []
            else:
                # Read up to here: another process may be appending.
                used = [r.stream for r in read_log(path) if r.op == STREAM]
                with open(path, "rb") as f:
                    if struct.unpack_from("<I", f.read(12), 8)[0] != VERSION_APPEND:
                        raise LogError(f"log {path}: not a version {VERSION_APPEND} log")
            self.stream = max(used, default=-1) + 1
            self._write(STREAM, 0, 0, 0, 0, 0, 0, driver.encode() + b"\0" + name.encode())

    def _locked(self):
        fd = self.fd

        class Lock:
            def __enter__(self):
                fcntl.flock(fd, fcntl.LOCK_EX)

            def __exit__(self, *exc):
                fcntl.flock(fd, fcntl.LOCK_UN)
        return Lock()

    def _write(self, op, flags, ret, seq, offset, length, aux, data=b""):
        head = struct.pack("<BBHIiQQQQ", op, self.stream, flags, len(data), ret, seq,
                           offset, length, aux)
        rec = struct.pack("<I", zlib.crc32(head + data)) + head + data
        done = 0
        while done < len(rec):
            done += os.write(self.fd, rec[done:])

    def append(self, *args, **kw):
        with self._locked():
            self._write(*args, **kw)

    def start(self, op, offset, length, flags=0):
        """A request begins (before it is sent): its seq."""
        seq, self.seq = self.seq, self.seq + 1
        self.append(START, flags, 0, seq, offset, length, op)
        return seq

    def done(self, op, seq, offset, length, flags=0, ret=0, data=b""):
        """A request's reply arrived."""
        self.append(op, flags, ret, seq, offset, length, 0, data if op == WRITE else b"")

    def flush_start(self):
        """(seq, the log's end in bytes) as a flush is sent: what it covers."""
        seq, self.seq = self.seq, self.seq + 1
        with self._locked():
            return seq, os.lseek(self.fd, 0, os.SEEK_END)

    def flush_done(self, seq, covers, ret=0):
        self.append(FLUSH, 0, ret, seq, 0, 0, covers)

    def close(self):
        os.close(self.fd)


if __name__ == "__main__":
    import sys
    try:
        for r in read_log(sys.argv[1]):
            print(f"{r.idx:5} @{r.pos:<8} s{r.stream} {OP_NAMES[r.op]:8} seq={r.seq} "
                  f"off={r.offset} len={r.length} flags={r.flags:#x} ret={r.ret} aux={r.aux}")
    except LogError as e:
        print(e, file=sys.stderr)
        sys.exit(2)
