#!/usr/bin/env python3
"""Crash states from a log-writes log and a copy of the image taken before
the logged run, each checked as an image the disk could hold after a power
cut (tests/crash/README.md says what is checked and why).

The disk stream of the log (the log-writes node over the file) gives the
states: for every flush it completed (and the start), everything durable
at that flush, plus the writes after it up to the next flush applied as
none, all in order, prefixes, seeded random subsets in random order, and
the last write torn at a 512-byte boundary.

What a state must read back comes from the guest stream (a log-writes node
over the format), when there is one: every guest write covered by a guest
flush that completed before the disk's next flush reads back, and each
sector holds its durable data or the data of a guest request started before
that next flush, nothing else. Without a guest stream (a qblk-img command), each
sector holds its data from before or after the run.

Alone it replays one state: replay.py ... --state K:KIND:I --keep OUT."""
import argparse
import collections
import concurrent.futures
import hashlib
import json
import os
import queue
import random
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from logfmt import (WRITE, ZERO, DISCARD, TRUNCATE, FLUSH, START, REQ_FUA,  # noqa: E402
                    LogError, read_log, streams)

SECTOR = 512
TOOL_TIMEOUT = int(os.environ.get("QBLK_TOOL_TIMEOUT", "120"))
ZERO_SECTOR = bytes(SECTOR)
ANY = None      # a sector whose content is not checked (an unaligned guest request)
UNSET = object()    # a sector no guest request named


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=TOOL_TIMEOUT, **kw)


def sectors(buf):
    return [bytes(buf[i:i + SECTOR]) for i in range(0, len(buf), SECTOR)]


# qcow2 clusters with refcount 1 whose L2 entry lacks the COPIED flag: a
# write copies such a cluster instead of writing it in place, so no data is
# at risk, but qemu-img check counts each as an error (check -r all clears
# them). Deleting an internal snapshot leaves them between the refcount
# drop and the rewrite of the L2 tables (QEMU 7.2 has the mirror window:
# COPIED set while the refcount is still 2). Counted apart, not as failures.
BENIGN = re.compile(r"^ERROR OFLAG_COPIED (data|L2) cluster: .*refcount=1$")


def only_benign(tool, fmt, image):
    """Whether every error tool's check reports is a BENIGN one."""
    p = run([tool, "check", "-f", fmt, image])
    errors = [ln for ln in p.stdout.decode(errors="replace").splitlines()
              if ln.startswith("ERROR")]
    return bool(errors) and all(BENIGN.match(ln) for ln in errors)


def dump_guest(tool, fmt, image, out):
    """The guest view of image as a raw file, read by tool (qemu-img or qblk-img)."""
    p = run([tool, "convert", "-U", "-f", fmt, "-O", "raw", image, out])
    if p.returncode != 0:
        return None, p.stdout.decode(errors="replace").strip()
    with open(out, "rb") as f:
        return f.read(), None


def image_is_dirty(fmt, buf):
    """qcow2's dirty bit (lazy refcounts) or QED's need-check: refcounts or
    tables may be stale until a read-write open repairs them."""
    if fmt == "qcow2" and len(buf) >= 80 and int.from_bytes(buf[4:8], "big") >= 3:
        return bool(int.from_bytes(buf[72:80], "big") & 1)
    if fmt == "qed" and len(buf) >= 24:
        return bool(int.from_bytes(buf[16:24], "little") & 2)
    return False


class Replayer:
    def __init__(self, log, initial, image, fmt, build, seed=1, final=None, backing=None,
                 subsets=4, prefixes=3, torn=2, jobs=1):
        self.log, self.initial_path, self.image, self.fmt = log, initial, image, fmt
        self.qblk_img = os.path.join(build, "qblk-img")
        self.qblk_io = os.path.join(build, "qblk-io")
        self.build = build
        self.seed, self.final_path, self.backing = seed, final, backing
        self.nsub, self.npre, self.ntorn = subsets, prefixes, torn
        self.jobs = max(1, jobs)
        self.timing = collections.Counter()     # seconds per step of a state's check
        self._lock = threading.Lock()
        self._slots = queue.Queue()             # scratch image suffixes, one per job
        for i in range(self.jobs):
            self._slots.put(i)
        self.reused = 0     # states whose tool results a byte-identical state gave
        self.records = read_log(log)
        st = streams(self.records)
        disk = [s for s, (drv, _) in st.items() if drv == "file"]
        if len(disk) != 1:
            raise LogError(f"log {log}: expected one stream over a 'file' node, found {len(disk)}")
        self.disk = disk[0]
        guest = [s for s in st if s != self.disk]
        if len(guest) > 1:
            raise LogError(f"log {log}: more than one guest stream")
        self.guest = guest[0] if guest else None
        with open(initial, "rb") as f:
            self.initial = bytearray(f.read())
        self.dump_tmp = image + ".dump"
        self.benign = 0     # checks that found only BENIGN errors
        self._boundaries()
        self._guest_content()

    # ----- disk states -----

    def _boundaries(self):
        """(log position, covers) of the start and of each flush the disk
        completed; window end: the position of the next one."""
        self.ops = [r for r in self.records
                    if r.stream == self.disk and r.op in (WRITE, ZERO, DISCARD, TRUNCATE)]
        self.bounds = [(-1, 0)]
        covers = 0
        for r in self.records:
            if r.stream == self.disk and r.op == FLUSH and r.ret == 0:
                covers = max(covers, r.aux)
                self.bounds.append((r.idx, covers))
        self.ends = [b[0] for b in self.bounds[1:]] + [len(self.records)]

    def window(self, k):
        covers, end = self.bounds[k][1], self.ends[k]
        return [r for r in self.ops if covers <= r.idx < end]

    def states(self, k):
        """(id, [(record, torn bytes or None)]) of boundary k's states."""
        w = self.window(k)
        out = [(f"{k}:none:0", [])]
        if not w:
            return out
        out.append((f"{k}:all:0", [(r, None) for r in w]))
        if len(w) > 1:
            steps = sorted({max(1, (len(w) * (i + 1)) // (self.npre + 1)) for i in range(self.npre)})
            for j in steps:
                if j < len(w):
                    out.append((f"{k}:prefix:{j}", [(r, None) for r in w[:j]]))
            for i in range(self.nsub):
                rng = random.Random(f"{self.seed}:{k}:{i}")
                sub = [r for r in w if rng.random() < 0.5]
                rng.shuffle(sub)
                out.append((f"{k}:subset:{i}", [(r, None) for r in sub]))
        writes = [i for i, r in enumerate(w) if r.op == WRITE and r.length > SECTOR]
        if writes:
            last = writes[-1]
            nsec = (w[last].length + SECTOR - 1) // SECTOR
            rng = random.Random(f"{self.seed}:{k}:torn")
            cuts = sorted(set(rng.randrange(1, nsec) for _ in range(self.ntorn)))
            for c in cuts:
                out.append((f"{k}:torn:{c}",
                            [(r, None) for r in w[:last]] + [(w[last], c * SECTOR)]))
        return out

    @staticmethod
    def apply(buf, r, torn=None):
        if r.op == WRITE:
            data = r.data if torn is None else r.data[:torn]
            end = r.offset + len(data)
            if len(buf) < end:
                buf.extend(bytes(end - len(buf)))
            buf[r.offset:end] = data
        elif r.op == ZERO:
            end = r.offset + r.length
            if len(buf) < end:
                buf.extend(bytes(end - len(buf)))
            buf[r.offset:end] = bytes(r.length)
        elif r.op == DISCARD:   # a hole, the size kept (file-posix punches)
            end = min(r.offset + r.length, len(buf))
            if end > r.offset:
                buf[r.offset:end] = bytes(end - r.offset)
        elif r.op == TRUNCATE:
            if r.offset < len(buf):
                del buf[r.offset:]
            else:
                buf.extend(bytes(r.offset - len(buf)))

    # ----- what each state must read -----

    def _guest_dump(self, path, what, fmt=None):
        data, err = dump_guest("qemu-img", fmt or self.fmt, path, self.dump_tmp)
        if data is None:
            raise LogError(f"cannot read the {what} image {path}: {err}")
        return sectors(data)

    def _guest_content(self):
        with open(self.image, "wb") as f:
            f.write(self.initial)
        self.g_initial = self._guest_dump(self.image, "initial")
        self.g_backing = None
        if self.backing:
            self.g_backing = self._guest_dump(self.backing, "backing", "raw")
        self.g_final = self._guest_dump(self.final_path, "final") if self.final_path else None
        if self.guest is None:
            return
        starts = {}
        self.g_ops = []     # (completion record, start idx)
        for r in self.records:
            if r.stream != self.guest:
                continue
            if r.op == START:
                starts[r.seq] = r.idx
            elif r.op in (WRITE, ZERO, DISCARD):
                self.g_ops.append((r, starts.get(r.seq, r.idx)))
        self.g_flushes = [(r.idx, r.aux) for r in self.records
                          if r.stream == self.guest and r.op == FLUSH and r.ret == 0]

    def _op_values(self, r):
        """{sector: value} a guest op leaves (ANY for partly covered sectors)."""
        out = {}
        first, end = r.offset // SECTOR, (r.offset + r.length + SECTOR - 1) // SECTOR
        for s in range(first, end):
            lo, hi = s * SECTOR, (s + 1) * SECTOR
            if lo < r.offset or hi > r.offset + r.length:
                out[s] = ANY
            elif r.op == WRITE:
                out[s] = r.data[lo - r.offset:hi - r.offset]
            else:
                out[s] = ZERO_SECTOR
        return out

    def requirement(self, k):
        """What boundary k's states must read depends on this only: the
        guest records durable and the guest requests started by its end."""
        end = self.ends[k]
        if self.guest is None:
            return k == len(self.bounds) - 1
        gcov = self.guest_covers(k)
        return (gcov, sum(1 for _, start in self.g_ops if start < end),
                sum(1 for r, _ in self.g_ops if self._fua(r) and r.idx < end))

    def expectations(self, k):
        """(durable {sector: set}, pending {sector: set}) for boundary k."""
        if getattr(self, "_exp_k", None) == k:
            return self._exp
        self._exp_k, self._exp = k, self._expectations(k)
        return self._exp

    def guest_covers(self, k):
        """The guest records durable in boundary k's states: those covered
        by a guest flush completed before the window's end. Each state is
        checked as a crash just before that end: the disk has completed no
        flush since the boundary's, so a guest flush completed by then
        relied on flushes up to the boundary's, whose writes the state holds."""
        return max([c for i, c in self.g_flushes if i < self.ends[k]], default=0)

    @staticmethod
    def _fua(r):
        """A guest request acknowledged with FUA: durable from its own
        completion record on, flush or not. Sound where its completion is
        recorded after the disk flush that made it durable (a log-writes
        node above the format, the core's FUA flush below it; an NBD
        client, the server's flush before its reply)."""
        return r.ret == 0 and r.flags & REQ_FUA

    def _expectations(self, k):
        end = self.ends[k]
        gcov = self.guest_covers(k)
        durable, pending = {}, {}
        for r, start in self.g_ops:
            vals = self._op_values(r)
            if r.ret == 0 and (r.idx < gcov or (self._fua(r) and r.idx < end)):
                for s, v in vals.items():
                    if v is ANY or durable.get(s, 0) is ANY:
                        durable[s] = ANY
                    elif r.op == DISCARD:   # zeroes, the backing file's data, or as before
                        prev = durable.get(s) or {self._initial(s)}
                        durable[s] = prev | {ZERO_SECTOR, self._backing(s)}
                    else:
                        durable[s] = {v}
            elif start < end:
                for s, v in vals.items():
                    if v is ANY or pending.get(s, 0) is ANY:
                        pending[s] = ANY
                    else:
                        pending.setdefault(s, set()).update(
                            {v} if r.op != DISCARD else {ZERO_SECTOR, self._backing(s)})
        return durable, pending

    def _initial(self, s):
        return self.g_initial[s] if s < len(self.g_initial) else ZERO_SECTOR

    def _backing(self, s):
        if self.g_backing and s < len(self.g_backing):
            return self.g_backing[s]
        return ZERO_SECTOR

    def check_content(self, k, got):
        """The first sector that reads what it may not, as a message, or None."""
        if self.guest is None:
            return self._check_before_after(k, got)
        durable, pending = self.expectations(k)
        for s, v in enumerate(got):
            # (ANY is None: a sector absent from a map must not read as ANY,
            # or every sector without a pending value went unchecked.)
            d = durable.get(s, UNSET)
            p = pending.get(s, UNSET)
            if d is ANY or p is ANY:
                continue
            d = None if d is UNSET else d
            p = None if p is UNSET else p
            allowed = (d if d is not None else {self._initial(s)}) | (p or set())
            if v not in allowed:
                return self._describe(s, v, d, p)
        return None

    def _check_before_after(self, k, got):
        final = self.g_final
        last = k == len(self.bounds) - 1 and not self.window(k)
        if len(got) not in (len(self.g_initial), len(final)):
            return (f"virtual size {len(got) * SECTOR} is neither the initial "
                    f"{len(self.g_initial) * SECTOR} nor the final {len(final) * SECTOR}")
        for s, v in enumerate(got):
            f = final[s] if s < len(final) else ZERO_SECTOR
            if last and v != f:
                return f"sector {s} (guest offset {s * SECTOR}) differs from the final image"
            if v != f and v != self._initial(s) and v != ZERO_SECTOR:
                return (f"sector {s} (guest offset {s * SECTOR}) holds neither its data "
                        f"before nor after the run")
        return None

    @staticmethod
    def _describe(s, v, d, p):
        what = "a write acknowledged before a completed flush is lost" if d else \
               "data that was never written there"
        return (f"sector {s} (guest offset {s * SECTOR}): {what} "
                f"(reads {v[:8].hex()}..., {len(d or ())} durable and "
                f"{len(p or ())} pending values allowed)")

    # ----- one state -----

    def build_state(self, k, base, applied):
        buf = bytearray(base)
        for r, torn in applied:
            self.apply(buf, r, torn)
        return buf

    def _run(self, step, cmd):
        t = time.monotonic()
        p = run(cmd)
        with self._lock:
            self.timing[step] += time.monotonic() - t
        return p

    def check_image(self, buf):
        """What a state's bytes alone decide: (problems, benign, guest data
        or None). Runs the tools on the state written to a scratch file of
        its own (states are checked in parallel)."""
        slot = self._slots.get()
        try:
            return self._check_image(buf, f"{self.image}.{slot}" if slot else self.image)
        finally:
            self._slots.put(slot)

    def _check_image(self, buf, image):
        t = time.monotonic()
        with open(image, "wb") as f:
            f.write(buf)
        with self._lock:
            self.timing["write the state"] += time.monotonic() - t
        problems = []
        benign = False
        dirty = image_is_dirty(self.fmt, buf)
        for tool in ("qemu-img", self.qblk_img):
            name = os.path.basename(tool)
            p = self._run(f"{name} check", [tool, "check", "--output=json", "-f", self.fmt, image])
            try:
                res = json.loads(p.stdout.decode(errors="replace")[p.stdout.find(b"{"):])
            except ValueError:
                res = None
            if res is None or p.returncode not in (0, 2, 3):
                problems.append(f"{name} check failed (exit {p.returncode}): "
                                f"{p.stdout.decode(errors='replace').strip()[:300]}")
            elif (res.get("corruptions", 0) or res.get("check-errors", 0)) and not dirty:
                if not res.get("check-errors", 0) and only_benign(tool, self.fmt, image):
                    benign = True
                    continue
                problems.append(f"{name} check: {res.get('corruptions', 0)} corruptions, "
                                f"{res.get('check-errors', 0)} check errors")
        if dirty:
            # Tables may point anywhere until the repair a read-write open
            # does (QEMU's tools cannot read such a state either): read
            # the data after it.
            p = self._run("repairing open", [self.qblk_io, "-f", self.fmt, "-c", "flush", image])
            if p.returncode != 0:
                problems.append(f"the repairing read-write open fails (exit {p.returncode}): "
                                f"{p.stdout.decode(errors='replace').strip()[:300]}")
        t = time.monotonic()
        data, err = dump_guest(self.qblk_img, self.fmt, image, image + ".dump")
        with self._lock:
            self.timing["qblk-img convert"] += time.monotonic() - t
        if data is None:
            problems.append(f"qblk-img convert cannot read the state: {err[:300]}")
        p = self._run("rw open+write+close", [self.qblk_io, "-f", self.fmt,
                                              "-c", "write -P 0xa5 0 64k", "-c", "flush", image])
        out = p.stdout.decode(errors="replace")
        if p.returncode != 0 or "failed" in out:
            problems.append(f"read-write open + write: exit {p.returncode}: {out.strip()[:300]}")
        else:
            p = self._run("qemu-img check after", ["qemu-img", "check", "--output=json",
                                                   "-f", self.fmt, image])
            if p.returncode == 2 and only_benign("qemu-img", self.fmt, image):
                benign = True
            elif p.returncode not in (0, 3):
                problems.append(f"after a read-write open, a write and a close, qemu-img check "
                                f"exits {p.returncode}: {p.stdout.decode(errors='replace')[:300]}")
        return problems, benign, data

    def check_state(self, k, buf):
        """A list of problems (empty: the state is good)."""
        problems, benign, data = self.check_image(buf)
        return self._with_content(k, problems, benign, data)

    def _with_content(self, k, problems, benign, data):
        """problems plus what the guest data must read at boundary k."""
        if benign:
            self.benign += 1
        if data is not None:
            t = time.monotonic()
            msg = self.check_content(k, sectors(data))
            with self._lock:
                self.timing["content check"] += time.monotonic() - t
            if msg:
                return problems + [msg]
        return problems

    def where(self, k):
        pos = self.bounds[k][0]
        w = self.window(k)
        at = "the start of the log" if pos < 0 else \
            f"flush record {pos} (byte {self.records[pos].pos})"
        span = f"records {w[0].idx}..{w[-1].idx}" if w else "no records"
        return f"after {at}, window {span}"

    def run_all(self, deadline=None, max_states=None, only=None, keep=None, report=print,
                limit=None, check=True):
        """Checks the states; returns (checked, failed). limit(k, states)
        may thin a boundary's states (the sample run). With jobs > 1 the
        tools run on that many states at once; the verdicts are taken in
        order. A state whose bytes equal a recent one's (same image, other
        requirements) reuses that one's tool results: the tools see only
        the bytes; its guest data is still checked against its own
        requirements."""
        failed = 0
        self.benign_states = 0
        seen = set()
        recent = collections.OrderedDict()     # sha1 of a state -> its check_image future
        pending = collections.deque()          # (sid, k, buf, future), in order
        pool = concurrent.futures.ThreadPoolExecutor(self.jobs) if check else None

        def finish():
            nonlocal failed
            sid, k, buf, fut = pending.popleft()
            problems, benign, data = fut.result()
            before = self.benign
            problems = self._with_content(k, problems, benign, data)
            if self.benign > before:
                self.benign_states += 1
            if problems:
                failed += 1
                self._report_failure(sid, k, buf, problems, keep, report)

        try:
            self._submit_all(deadline, max_states, only, limit, check, pool, recent, pending,
                             finish, seen)
            while pending:      # before the counts are returned
                finish()
            return self._checked, failed
        finally:
            if pool:
                pool.shutdown(wait=True, cancel_futures=True)

    def _submit_all(self, deadline, max_states, only, limit, check, pool, recent, pending,
                    finish, seen):
        """Builds the states in order and hands them to the pool (counted
        in self._checked); stops at the deadline or max_states."""
        base = bytearray(self.initial)
        done_ops = 0
        self._checked = 0
        for k in range(len(self.bounds)):
            covers = self.bounds[k][1]
            while done_ops < len(self.ops) and self.ops[done_ops].idx < covers:
                if self.ops[done_ops].ret == 0:
                    self.apply(base, self.ops[done_ops])
                done_ops += 1
            states = self.states(k)
            if only:
                states = [s for s in states if s[0] == only]
            elif limit:
                states = limit(k, states)
            for sid, applied in states:
                if deadline and self._checked and time.monotonic() > deadline:
                    return
                if max_states is not None and self._checked >= max_states:
                    return
                t = time.monotonic()
                buf = self.build_state(k, base, applied)
                digest = hashlib.sha1(buf).digest()
                self.timing["build the state"] += time.monotonic() - t
                key = (digest, self.requirement(k))
                if key in seen and not only:
                    continue
                seen.add(key)
                self._checked += 1
                if not check:
                    continue
                fut = recent.get(digest)
                if fut is None:
                    fut = pool.submit(self.check_image, buf)
                    recent[digest] = fut
                    if len(recent) > 16:
                        recent.popitem(last=False)
                else:
                    self.reused += 1
                pending.append((sid, k, buf, fut))
                while len(pending) > 2 * self.jobs:
                    finish()

    def _report_failure(self, sid, k, buf, problems, keep, report):
        saved = ""
        if keep:
            os.makedirs(keep, exist_ok=True)
            path = os.path.join(keep, f"state-{sid.replace(':', '-')}.{self.fmt}")
            with open(path, "wb") as f:
                f.write(buf)
            saved = f" (state saved as {path})"
        report(f"FAILED state {sid} seed {self.seed}, {self.where(k)}{saved}:")
        for p in problems:
            report(f"    {p}")
        report("    replay it alone: " + " ".join(self.command(sid)))

    def command(self, sid):
        here = os.path.dirname(os.path.abspath(__file__))
        cmd = ["python3", os.path.join(here, "replay.py"), "--build", self.build,
               "--log", self.log, "--initial", self.initial_path, "--image", self.image,
               "--format", self.fmt, "--seed", str(self.seed), "--state", sid]
        if self.final_path:
            cmd += ["--final", self.final_path]
        if self.backing:
            cmd += ["--backing", self.backing]
        return cmd


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--initial", required=True, help="the image file before the run")
    ap.add_argument("--image", required=True, help="where states are written (scratch)")
    ap.add_argument("--format", required=True)
    ap.add_argument("--final", help="the image after the run (no guest stream)")
    ap.add_argument("--backing", help="the image's raw backing file (for discarded data)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--state", help="replay only this state (K:KIND:I)")
    ap.add_argument("--keep", help="save failing states in this folder")
    ap.add_argument("--list", action="store_true", help="list the states, check none")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="states checked at once")
    a = ap.parse_args()
    try:
        r = Replayer(a.log, a.initial, a.image, a.format, a.build, a.seed, a.final, a.backing,
                     jobs=a.jobs)
    except LogError as e:
        print(e, file=sys.stderr)
        return 2
    if a.list:
        for k in range(len(r.bounds)):
            for sid, _ in r.states(k):
                print(sid, r.where(k))
        return 0
    checked, failed = r.run_all(only=a.state, keep=a.keep)
    if r.benign_states:
        print(f"# {r.benign_states} states only lack COPIED flags on clusters of refcount 1")
    print(f"{checked} crash states, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
