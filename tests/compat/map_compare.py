#!/usr/bin/env python3
"""Compares `qemu-img map --output=json` of twin images (one written by
QEMU's tools, one by qblk's), so the compat suites see where each image
holds data, zero clusters or nothing, not only what it reads.

usage: map_compare.py [-f FMT] [--zero-data] [--as-backing] QEMU_IMAGE QBLK_IMAGE
Host offsets are dropped (the twins may lay clusters out differently) and
adjacent ranges with equal depth/present/zero/data are merged, since tools
split ranges at different places. --zero-data counts, in both maps, every
cluster of a depth-0 data range that reads as zeroes as a zero cluster:
only for where one tool writes zero data and the other a zero cluster on
purpose (the caller says why). --as-backing replaces, in QEMU's map only,
every depth-0 cluster that reads as the backing file does by the backing
file's map there: qemu-img convert -B writes such clusters into the new
image, qblk-img leaves them to the backing file on purpose (a qblk image
holding them is still a difference). Each qemu-img call is bounded by
QBLK_TOOL_TIMEOUT seconds. Exit 0 equal, 1 different (both maps printed)
or no map (the reason printed), 2 bad usage."""
import json
import os
import subprocess
import sys
import tempfile

FIELDS = ("depth", "present", "zero", "data")
TIMEOUT = int(os.environ.get("QBLK_TOOL_TIMEOUT", "120"))


class MapError(Exception):
    pass


def qemu_img(args):
    try:
        r = subprocess.run(["qemu-img"] + args, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise MapError("TIMEOUT: qemu-img %s killed after %d s" % (" ".join(args), TIMEOUT))
    if r.returncode:
        raise MapError("qemu-img %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout


def load(fmt, image):
    try:
        doc = json.loads(qemu_img(["map"] + fmt + ["--output=json", image]))
        return [dict(start=r["start"], length=r["length"], **{k: r[k] for k in FIELDS})
                for r in doc]
    except (ValueError, KeyError, TypeError) as e:
        raise MapError("map of %s: %s" % (image, e))


def clusters(r, cluster):
    """The range r cut at cluster boundaries: (start, length) pairs."""
    pos, end = r["start"], r["start"] + r["length"]
    while pos < end:
        n = min(cluster - pos % cluster, end - pos)
        yield pos, n
        pos += n


def zero_data_as_zero(ranges, content, cluster):
    out = []
    for r in ranges:
        if r["depth"] != 0 or not r["data"]:
            out.append(r)
            continue
        for pos, n in clusters(r, cluster):
            piece = dict(r, start=pos, length=n)
            if content[pos:pos + n].count(0) == n:
                piece.update(zero=True, data=False)
            out.append(piece)
    return out


def with_zero_data_as_zero(fmt, image, maps):
    info = json.loads(qemu_img(["info"] + fmt + ["--output=json", image]))
    cluster = info.get("cluster-size", 65536)
    content = read_raw(fmt, image)
    return [zero_data_as_zero(m, content, cluster) for m in maps]


def read_raw(fmt, image):
    with tempfile.NamedTemporaryFile(suffix=".raw") as raw:
        qemu_img(["convert"] + fmt + ["-O", "raw", image, raw.name])
        with open(raw.name, "rb") as f:
            return f.read()


def backing_copies_as_backing(fmt, image, ranges):
    info = json.loads(qemu_img(["info"] + fmt + ["--output=json", image]))
    backing = info["full-backing-filename"]
    cluster = info.get("cluster-size", 65536)
    own, below = read_raw(fmt, image), read_raw([], backing)
    below += bytes(max(0, len(own) - len(below)))
    under = [dict(r, depth=r["depth"] + 1) for r in load([], backing)]
    out = []
    for r in ranges:
        for pos, n in clusters(r, cluster):
            if r["depth"] == 0 and own[pos:pos + n] == below[pos:pos + n]:
                out += [dict(u, start=max(u["start"], pos),
                             length=min(u["start"] + u["length"], pos + n) - max(u["start"], pos))
                        for u in under
                        if u["start"] < pos + n and u["start"] + u["length"] > pos]
            else:
                out.append(dict(r, start=pos, length=n))
    return out


def merge(ranges):
    out = []
    for r in ranges:
        last = out[-1] if out else None
        if (last and last["start"] + last["length"] == r["start"]
                and all(last[k] == r[k] for k in FIELDS)):
            last["length"] += r["length"]
        else:
            out.append(dict(r))
    return out


def show(ranges):
    return "\n".join("  %d+%d depth=%d present=%s zero=%s data=%s" % (
        r["start"], r["length"], r["depth"], r["present"], r["zero"], r["data"]) for r in ranges)


def compare(qemu_image, qblk_image, fmt=None, zero_data=False, as_backing=False):
    """None when the maps agree, else what differs (or why there is no map)."""
    fmt = ["-f", fmt] if fmt else []
    try:
        maps = [load(fmt, qemu_image), load(fmt, qblk_image)]
        if as_backing:
            maps[0] = backing_copies_as_backing(fmt, qemu_image, maps[0])
        if zero_data:
            maps = with_zero_data_as_zero(fmt, qemu_image, maps)
    except (MapError, OSError, ValueError, KeyError) as e:
        return str(e)
    qemu, qblk = (merge(m) for m in maps)
    if qemu == qblk:
        return None
    return "map of QEMU's image:\n%s\nmap of qblk's image:\n%s" % (show(qemu), show(qblk))


def main(argv):
    fmt, zero_data, as_backing = None, False, False
    while argv[:1] in (["-f"], ["--zero-data"], ["--as-backing"]):
        if argv[0] == "-f":
            fmt, argv = argv[1], argv[2:]
        else:
            zero_data |= argv[0] == "--zero-data"
            as_backing |= argv[0] == "--as-backing"
            argv = argv[1:]
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    why = compare(argv[0], argv[1], fmt, zero_data, as_backing)
    if why:
        print(why)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
