#!/usr/bin/env python3
"""A minimal QMP client: negotiates capabilities on a monitor socket, sends
each command given on the command line, prints every reply, and with
--wait EVENT reads (printing events) until that event arrives.

  scripts/qmp-client.py SOCKET '{"execute": "query-jobs"}' \\
      --wait BLOCK_JOB_COMPLETED '{"execute": "quit"}'

Exit status 1 when a command got an error reply or the socket closed early."""
import json
import socket
import sys
import time

TIMEOUT = 600


class Monitor:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(path)
        self.buf = b""

    def read(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the daemon closed the monitor connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, text):
        self.sock.sendall(text.encode() + b"\n")
        while True:
            msg = self.read()
            if "event" in msg:
                show_event(msg)
                continue
            print("<-", json.dumps(msg))
            return "error" not in msg

    def wait(self, name):
        while True:
            msg = self.read()
            if "event" in msg:
                show_event(msg)
                if msg["event"] == name:
                    return


def show_event(msg):
    msg.pop("timestamp", None)
    print("event", json.dumps(msg))


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    mon = Monitor(argv[1])
    greeting = mon.read()
    if "QMP" not in greeting:
        print("not a QMP monitor:", greeting, file=sys.stderr)
        return 1
    ok = mon.execute('{"execute": "qmp_capabilities"}')
    args = argv[2:]
    i = 0
    start = time.monotonic()
    while ok and i < len(args):
        if args[i] == "--wait" and i + 1 < len(args):
            mon.wait(args[i + 1])
            print(f"  ({args[i + 1]} after {time.monotonic() - start:.2f} s)")
            i += 2
            continue
        print("->", args[i])
        ok = mon.execute(args[i])
        i += 1
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, EOFError, ValueError) as e:
        print(f"qmp-client: {e}", file=sys.stderr)
        sys.exit(1)
