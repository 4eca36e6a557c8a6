# A small NBD client for the protocol tests: fixed newstyle handshake,
# options, requests and replies (simple and structured) over a unix socket.
import socket
import struct

NBDMAGIC = 0x4e42444d41474943
IHAVEOPT = 0x49484156454F5054
REP_MAGIC = 0x0003e889045565a9
REQ_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
STRUCT_MAGIC = 0x668e33ef

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_INFO, OPT_GO = 1, 2, 3, 6, 7
OPT_STRUCTURED_REPLY, OPT_LIST_META, OPT_SET_META = 8, 9, 10
REP_ACK, REP_SERVER, REP_INFO, REP_META = 1, 2, 3, 4
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_CACHE = 0, 1, 2, 3, 4, 5
CMD_WRITE_ZEROES, CMD_BLOCK_STATUS = 6, 7
FLAG_FUA, FLAG_NO_HOLE, FLAG_DF, FLAG_REQ_ONE, FLAG_FAST_ZERO = 1, 2, 4, 8, 16


class Closed(Exception):
    pass


class Client:
    def __init__(self, path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.handle = 0
        self.structured = False

    def recv(self, n):
        buf = b''
        while len(buf) < n:
            d = self.s.recv(n - len(buf))
            if not d:
                raise Closed()
            buf += d
        return buf

    def closed(self):
        """True when the server has closed the connection."""
        try:
            return self.s.recv(1) == b''
        except (ConnectionResetError, BrokenPipeError):
            return True

    def drain(self):
        """Everything the server sends until it closes (or goes quiet)."""
        data = b''
        try:
            while True:
                d = self.s.recv(4096)
                if not d:
                    return data + b'<EOF>'
                data += d
        except socket.timeout:
            return data + b'<timeout>'
        except (ConnectionResetError, BrokenPipeError):
            return data + b'<reset>'

    def greet(self, cflags=3):
        magic, opt, hflags = struct.unpack('>QQH', self.recv(18))
        assert magic == NBDMAGIC and opt == IHAVEOPT, 'bad greeting'
        self.s.sendall(struct.pack('>I', cflags))
        return hflags

    def send_opt(self, opt, data=b'', length=None):
        self.s.sendall(struct.pack('>QII', IHAVEOPT, opt,
                                   len(data) if length is None else length) + data)

    def opt_reply(self):
        magic, opt, rtype, length = struct.unpack('>QIII', self.recv(20))
        assert magic == REP_MAGIC, 'bad option reply magic'
        return rtype, self.recv(length)

    def opt_replies(self, opt, data=b''):
        """All replies of one option up to ACK or an error: [(type, data)]."""
        self.send_opt(opt, data)
        out = []
        while True:
            rtype, payload = self.opt_reply()
            out.append((rtype, payload))
            if rtype == REP_ACK or rtype & 0x80000000:
                return out

    @staticmethod
    def info_data(name, items=()):
        n = name.encode() if isinstance(name, str) else name
        return struct.pack('>I', len(n)) + n + struct.pack('>H', len(items)) + \
            b''.join(struct.pack('>H', i) for i in items)

    @staticmethod
    def meta_data(name, queries):
        n = name.encode()
        d = struct.pack('>I', len(n)) + n + struct.pack('>I', len(queries))
        for q in queries:
            d += struct.pack('>I', len(q)) + q.encode()
        return d

    def go(self, name='disk', structured=True, meta=()):
        """Negotiates and enters transmission; returns (size, tx flags)."""
        self.greet()
        if structured:
            assert self.opt_replies(OPT_STRUCTURED_REPLY)[-1][0] == REP_ACK
            self.structured = True
        if meta:
            assert self.opt_replies(OPT_SET_META, self.meta_data(name, meta))[-1][0] == REP_ACK
        size = flags = None
        for rtype, payload in self.opt_replies(OPT_GO, self.info_data(name)):
            if rtype == REP_INFO and struct.unpack('>H', payload[:2])[0] == 0:
                size, flags = struct.unpack('>QH', payload[2:12])
            elif rtype & 0x80000000:
                raise Closed('GO failed %#x %r' % (rtype, payload))
        return size, flags

    def send_req(self, cmd, offset=0, length=0, flags=0, data=b''):
        self.handle += 1
        self.s.sendall(struct.pack('>IHHQQI', REQ_MAGIC, flags, cmd, self.handle,
                                   offset, length) + data)
        return self.handle

    def reply(self, read_len=0, read_off=0):
        """One whole reply: (handle, error, data bytes, [(type, payload)])."""
        magic = struct.unpack('>I', self.recv(4))[0]
        if magic == SIMPLE_MAGIC:
            err, handle = struct.unpack('>IQ', self.recv(12))
            data = self.recv(read_len) if not err and read_len else b''
            return handle, err, data, []
        assert magic == STRUCT_MAGIC, 'bad reply magic %#x' % magic
        chunks, err, handle = [], 0, None
        while True:
            flags, rtype, handle, length = struct.unpack('>HHQI', self.recv(16))
            payload = self.recv(length)
            chunks.append((rtype, payload))
            if rtype & 0x8000:
                err = struct.unpack('>I', payload[:4])[0]
            if flags & 1:
                break
            assert struct.unpack('>I', self.recv(4))[0] == STRUCT_MAGIC
        return handle, err, assemble(chunks, read_len, read_off), chunks

    def cmd(self, cmd, offset=0, length=0, flags=0, data=b''):
        h = self.send_req(cmd, offset, length, flags, data)
        rh, err, out, chunks = self.reply(length if cmd == CMD_READ else 0, offset)
        assert rh == h, 'reply for another handle'
        return err, out, chunks


def assemble(chunks, read_len, read_off):
    """The bytes a structured READ's data and hole chunks describe (holes
    are zeroes)."""
    if not read_len:
        return b''
    buf = bytearray(read_len)
    for rtype, p in chunks:
        if rtype == 1:
            off = struct.unpack('>Q', p[:8])[0] - read_off
            buf[off:off + len(p) - 8] = p[8:]
    return bytes(buf)


def extents(chunks):
    """{context id: [(length, flags)]} of BLOCK_STATUS chunks."""
    out = {}
    for rtype, p in chunks:
        if rtype == 5:
            cid = struct.unpack('>I', p[:4])[0]
            out[cid] = [struct.unpack('>II', p[i:i + 8]) for i in range(4, len(p), 8)]
    return out
