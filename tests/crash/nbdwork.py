"""The NBD crash workloads (tests/crash/run): an NBD client's requests logged
by the client as it sent them and had them acknowledged (the guest stream),
what reached qblk-nbd's image file logged by the server (the disk stream),
both appended to one log (log-writes append=on, logfmt.LogAppender).

Why one timeline is right: the server appends each disk record when the
file completed the request, before it replies; the client appends a
request's completion record after the reply arrived, so after every disk
record the request caused (the socket orders the two processes, and every
record is one write under flock on an O_APPEND descriptor). A flush's
record names where the log ended when the client sent it: the guest writes
acknowledged by then. The server's file flush starts after it received the
flush, so covers all their disk records, and its FLUSH record precedes the
reply, so precedes the client's. A server that acknowledges a flush (or a
FUA write) without flushing the file leaves the client's record in a
window no disk flush closed, and the replayer's state without that window's
writes loses acknowledged data."""
import json
import os
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KiB = 1024

# Runs under Debian's python3-libnbd (/usr/bin/python3). argv: the folder of
# logfmt.py, socket, log, connections, batches. A batch is requests sent
# together (their ranges do not overlap: the order the server applies them
# in is not the order of their replies), each [conn, op, offset, length,
# pattern, fua], then, if its flush is not None, a flush on connection
# flush (sent once the batch is answered, so it covers it all).
NBD_CLIENT = r"""
import json, sys, nbd
sys.path.insert(0, sys.argv[1])
from logfmt import LogAppender, WRITE, ZERO, DISCARD, REQ_FUA, REQ_MAY_UNMAP
sock, log, n_conns, batches = sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
hs = []
for i in range(n_conns):
    h = nbd.NBD()
    h.connect_unix(sock)
    hs.append(h)
if n_conns > 1 and not hs[0].can_multi_conn():
    sys.exit("the server does not offer multi-conn")
lg = LogAppender(log, "nbd", "nbd+unix:///?socket=" + sock)


def wait(pending):
    # Each reply is recorded when libnbd has it (late is safe: it only
    # narrows what a flush covers and when a FUA write counts as durable).
    while pending:
        for h in hs:
            if h.aio_in_flight():
                h.poll(5)
        left = []
        for h, cookie, record in pending:
            try:
                ok = h.aio_command_completed(cookie)
            except nbd.Error as e:
                record(-(e.errno or 5))
                raise
            if ok:
                record(0)
            else:
                left.append((h, cookie, record))
        pending[:] = left


for reqs, flush_conn in batches:
    pending = []
    for conn, op, off, n, pat, fua in reqs:
        h = hs[conn]
        nflags = nbd.CMD_FLAG_FUA if fua else 0
        lflags = REQ_FUA if fua else 0
        if op == "write":
            buf = bytes([pat]) * n
            seq = lg.start(WRITE, off, n, lflags)
            cookie = h.aio_pwrite(buf, off, flags=nflags)
            rec = (lambda seq, off, n, f, buf: lambda ret: lg.done(WRITE, seq, off, n, f, ret, buf))(
                seq, off, n, lflags, buf)
        elif op == "zero":
            lflags |= REQ_MAY_UNMAP
            seq = lg.start(ZERO, off, n, lflags)
            cookie = h.aio_zero(n, off, flags=nflags)
            rec = (lambda seq, off, n, f: lambda ret: lg.done(ZERO, seq, off, n, f, ret))(
                seq, off, n, lflags)
        else:
            seq = lg.start(DISCARD, off, n, lflags)
            cookie = h.aio_trim(n, off, flags=nflags)
            rec = (lambda seq, off, n, f: lambda ret: lg.done(DISCARD, seq, off, n, f, ret))(
                seq, off, n, lflags)
        pending.append((h, cookie, rec))
    wait(pending)
    if flush_conn is not None:
        seq, covers = lg.flush_start()
        h = hs[flush_conn]
        pending = [(h, h.aio_flush(), lambda ret: lg.flush_done(seq, covers, ret))]
        wait(pending)
for h in hs:
    h.shutdown()
lg.close()
"""


def pick_range(rng, cfg, rand_range):
    """Half the requests inside the prefilled first MiB: an overwrite of
    allocated clusters makes the format flush nothing on its own, so only
    the client's flush (or FUA) can make it durable, which is what a server
    that drops them would be caught on."""
    if rng.random() < 0.5:
        n = rng.randrange(1, 129) * 512
        return rng.randrange(0, (1024 * KiB - n) // 512 + 1) * 512, n
    return rand_range(rng, cfg["cluster"])


def batches(rng, cfg, multi, rand_range):
    """About 24 requests: single ones on one connection; with multi, batches
    of up to 4 spread over two connections, each flush on a random one (the
    other than the writes' as often as not)."""
    out = []
    n_conns = 2 if multi else 1
    done = 0
    while done < 24:
        k = rng.randint(1, 4) if multi else 1
        reqs, taken = [], []
        for _ in range(k):
            for _try in range(20):
                off, n = pick_range(rng, cfg, rand_range)
                if all(off + n <= o or o + m <= off for o, m in taken):
                    break
            else:
                continue
            taken.append((off, n))
            op = rng.choice(["write", "write", "write", "zero", "trim"])
            reqs.append([rng.randrange(n_conns), op, off, n, rng.randrange(1, 256),
                         rng.random() < 0.2])
        done += len(reqs)
        flush = rng.randrange(n_conns) if rng.random() < 0.35 else None
        out.append([reqs, flush])
    out.append([[], 0])
    return out


def qblk_io_cmds(rng, cfg, rand_range):
    """The same mix for qblk-io over the nbd driver (one connection: the
    driver sends every write and flush on its first)."""
    cmds = []
    for i in range(24):
        off, n = pick_range(rng, cfg, rand_range)
        fua = " -f" if rng.random() < 0.2 else ""
        op = rng.choice(["write", "write", "write", "zero", "trim"])
        if op == "write":
            cmds.append(f"write{fua} -P {rng.randrange(1, 256):#x} {off} {n}")
        elif op == "zero":
            cmds.append(f"write{fua} -z -u {off} {n}")
        else:
            cmds.append(f"discard {off} {n}")
        if rng.random() < 0.3:
            cmds.append("flush")
    return cmds + ["flush"]


def start_server(build, cfg, img, log, d, n_conns, timeout):
    """qblk-nbd on a unix socket in d, its image file under log-writes
    (append=on): (process, socket)."""
    sock = os.path.join(d, "nbd.sock")
    opts = (f"driver={cfg['fmt']},file.driver=log-writes,file.log={log},file.append=on,"
            f"file.file.filename={img}")
    p = subprocess.Popen([os.path.join(build, "qblk-nbd"), "-k", sock, "-e", str(n_conns),
                          "--image-opts", opts], cwd=d,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while not os.path.exists(sock):
        if p.poll() is not None or time.monotonic() > deadline:
            stop_server(p, 1)
            raise RuntimeError(f"qblk-nbd did not start: "
                               f"{p.stdout.read().decode(errors='replace')[-400:]}")
        time.sleep(0.05)
    return p, sock


def stop_server(p, timeout):
    """Waits for qblk-nbd to end (it does once its last client left), kills
    it after timeout; its output."""
    try:
        out = p.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        p.kill()
        out = p.communicate()[0]
        raise RuntimeError("qblk-nbd did not exit after its clients left")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return out.decode(errors="replace")


def d_nbd(build, cfg, img, log, d, rng, kind, rand_range, sh, timeout):
    """One NBD workload: kind "libnbd" (one connection), "multi-conn" (two,
    flushes on either) or "qblk-client" (qblk-io over the nbd driver, its
    log-writes node above the nbd node)."""
    n_conns = 2 if kind == "multi-conn" else 1
    p, sock = start_server(build, cfg, img, log, d, n_conns, timeout)
    try:
        if kind == "qblk-client":
            argv = [os.path.join(build, "qblk-io"), "--image-opts",
                    f"driver=log-writes,log={log},append=on,file.driver=nbd,"
                    f"file.server.type=unix,file.server.path={sock}"]
            for c in qblk_io_cmds(rng, cfg, rand_range):
                argv += ["-c", c]
            out = sh(argv, d)
            if "failed" in out:
                raise RuntimeError(f"the workload failed: {out.strip()[-400:]}")
        else:
            reqs = batches(rng, cfg, kind == "multi-conn", rand_range)
            sh(["/usr/bin/python3", "-c", NBD_CLIENT, HERE, sock, log, str(n_conns),
                json.dumps(reqs)], d)
    finally:
        out = stop_server(p, timeout)
    if p.returncode != 0 or "runtime error" in out or "Sanitizer" in out:
        raise RuntimeError(f"qblk-nbd failed (exit {p.returncode}): {out[-400:]}")


# run name: the kind d_nbd takes
NBD = {"nbd": "libnbd", "nbd-multi-conn": "multi-conn", "nbd-qblk-client": "qblk-client"}
