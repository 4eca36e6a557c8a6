# Starts the NBD servers the libnbd tests run against, all with one shape:
# qblk-nbd and qemu-nbd (one image), qblk-storage-daemon and
# qemu-storage-daemon (--nbd-server/--export, optional QMP monitor).
import json
import os
import shutil
import signal
import socket
import subprocess
import time

QEMU_NBD = shutil.which('qemu-nbd') or '/usr/bin/qemu-nbd'
QEMU_DAEMON = '/usr/bin/qemu-storage-daemon'
MODES = ('qblk-nbd', 'qemu-nbd', 'qblk-daemon', 'qemu-daemon')
# The QEMU program each qblk server is compared with.
ORACLE = {'qblk-nbd': 'qemu-nbd', 'qblk-daemon': 'qemu-daemon'}
START_TIMEOUT = 15
STOP_TIMEOUT = 15


class Skip(Exception):
    pass


def program(mode, build):
    return {'qblk-nbd': os.path.join(build, 'qblk-nbd'), 'qemu-nbd': QEMU_NBD,
            'qblk-daemon': os.path.join(build, 'qblk-storage-daemon'),
            'qemu-daemon': QEMU_DAEMON}[mode]


class Export:
    """One export: IMAGE of format FMT served as NAME; cor puts guest
    copy-on-read in front of it (qblk-nbd -C, a copy-on-read filter node
    in the daemons); discard='unmap' passes trims down (the servers'
    default ignores them)."""
    def __init__(self, image, fmt, name='disk', writable=True, description=None,
                 allocation_depth=False, cor=False, discard=None):
        self.image, self.fmt, self.name, self.discard = image, fmt, name, discard
        self.writable, self.description = writable, description
        self.allocation_depth, self.cor = allocation_depth, cor


class Server:
    """A server process on a unix socket in WORKDIR, stopped by stop() (and
    by the context manager, also on failure). Raises Skip when the program
    is missing or refuses to start (the reason is its output)."""
    seq = 0
    live = set()    # running servers, for a watchdog that must break a hang
    refuse = False  # set by kill_all: no server starts until cleared

    def __init__(self, mode, build, workdir, exports, qmp=False, max_connections=None,
                 nbd_server_first=False):
        if isinstance(exports, Export):
            exports = [exports]
        if Server.refuse:
            raise AssertionError('timed out (the watchdog stopped the servers)')
        self.mode, self.exports = mode, exports
        self.prog = program(mode, build)
        if not os.access(self.prog, os.X_OK):
            raise Skip('%s: %s not found' % (mode, self.prog))
        Server.seq += 1
        self.sock = os.path.join(workdir, 'nbd-%d-%d.sock' % (os.getpid(), Server.seq))
        self.qmp_sock = self.sock + '.qmp' if qmp else None
        self.daemon = mode.endswith('daemon')
        if self.daemon:
            args = self._daemon_args(max_connections, nbd_server_first)
        else:
            if len(exports) != 1 or qmp:
                raise Skip('%s serves one export and has no monitor' % mode)
            args = self._nbd_args(exports[0], max_connections)
        self.argv = [self.prog] + args
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, universal_newlines=True)
        Server.live.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready():
            if self.p.poll() is not None or time.monotonic() > deadline:
                out = self.stop(check=False)
                raise Skip('%s did not start: %s' % (mode, ' '.join(out.split())[:300]))
            time.sleep(0.02)

    def _nbd_args(self, e, max_connections):
        args = ['-k', self.sock, '-x', e.name, '-t', '-e', str(max_connections or 16)]
        if not e.writable:
            args.append('-r')
        if e.description is not None:
            args += ['-D', e.description]
        if e.allocation_depth:
            args.append('-A')
        if e.discard:
            args.append('--discard=' + e.discard)
        if e.cor:
            if self.mode == 'qblk-nbd':
                args.append('-C')
            else:   # qemu-nbd has no -C: a copy-on-read filter through --image-opts
                return args + ['--image-opts', 'driver=copy-on-read,file.driver=%s,'
                               'file.file.driver=file,file.file.filename=%s' % (e.fmt, e.image)]
        return args + ['-f', e.fmt, e.image]

    def _daemon_args(self, max_connections, nbd_server_first):
        """--blockdev..., --nbd-server, --export... (the server before the
        exports, which need it); nbd_server_first puts it before the nodes."""
        srv = 'addr.type=unix,addr.path=' + self.sock
        if max_connections:
            srv += ',max-connections=%d' % max_connections
        args, exports = [], []
        if self.qmp_sock:
            args += ['--chardev', 'socket,id=mon0,path=%s,server=on,wait=off' % self.qmp_sock,
                     '--monitor', 'chardev=mon0']
        for i, e in enumerate(self.exports):
            discard = {'discard': e.discard} if e.discard else {}
            args += ['--blockdev', json.dumps({'driver': 'file', 'filename': e.image,
                                               'node-name': 'file%d' % i, **discard}),
                     '--blockdev', json.dumps({'driver': e.fmt, 'file': 'file%d' % i,
                                               'node-name': 'fmt%d' % i,
                                               'read-only': not e.writable, **discard})]
            node = 'fmt%d' % i
            if e.cor:
                args += ['--blockdev', json.dumps({'driver': 'copy-on-read', 'file': node,
                                                   'node-name': 'cor%d' % i})]
                node = 'cor%d' % i
            exp = 'type=nbd,id=exp%d,node-name=%s,name=%s,writable=%s' % (
                i, node, e.name, 'on' if e.writable else 'off')
            if e.description is not None:
                assert ',' not in e.description
                exp += ',description=' + e.description
            if e.allocation_depth:
                exp += ',allocation-depth=on'
            exports += ['--export', exp]
        if nbd_server_first:
            return ['--nbd-server', srv] + args + exports
        return args + ['--nbd-server', srv] + exports

    def node(self, i=0):
        """The node the stream job runs on for export I (the format node)."""
        return 'fmt%d' % i

    def _ready(self):
        """Whether the sockets accept connections (they exist a moment
        before the server listens on them)."""
        for path in (self.sock, self.qmp_sock):
            if not path:
                continue
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(path)
                except OSError:
                    return False
        return True

    def uri(self, name='disk'):
        return 'nbd+unix:///%s?socket=%s' % (name, self.sock)

    def kill(self):
        """SIGKILL: what a crash looks like to the image."""
        if self.p.poll() is None:
            self.p.kill()
        self.p.communicate(timeout=STOP_TIMEOUT)
        Server.live.discard(self)

    def stop(self, check=True):
        """Stops the server (SIGTERM, SIGKILL after STOP_TIMEOUT) and returns
        its output; with check, a sanitizer report or a server that ignored
        SIGTERM raises."""
        hung = False
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            out, _ = self.p.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            hung = True
            self.p.kill()
            out, _ = self.p.communicate()
        out = out or ''
        Server.live.discard(self)
        for f in (self.sock, self.qmp_sock):
            if f and os.path.exists(f):
                os.unlink(f)
        if check and hung:
            raise AssertionError('%s did not stop on SIGTERM' % self.mode)
        if check and ('Sanitizer' in out or 'runtime error' in out):
            raise AssertionError('%s sanitizer report:\n%s' % (self.mode, out[-3000:]))
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.stop()
            return
        # the test failed: say so if the server crashed, that is the news
        died = self.p.poll()
        out = self.stop(check=False)
        if died or any(w in out for w in ('Sanitizer', 'runtime error', 'Assertion')):
            print('    %s %s; its output: %s' % (
                self.mode, 'died with status %s' % died if died else 'was running',
                out.strip()[-1500:].replace('\n', '\n      ')))


def kill_all():
    """Kills every running server (a client blocked on one gets EOF), and
    refuses new ones until Server.refuse is cleared."""
    Server.refuse = True
    for s in list(Server.live):
        try:
            s.p.kill()
        except OSError:
            pass


class Monitor:
    """A QMP client on the server's monitor socket; every wait bounded."""
    def __init__(self, path, timeout=30):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b''
        self.events = []
        greeting = self._read()
        assert 'QMP' in greeting, greeting
        self.cmd('qmp_capabilities')

    def _read(self):
        while b'\n' not in self.buf:
            data = self.s.recv(65536)
            if not data:
                raise EOFError('the daemon closed its monitor')
            self.buf += data
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)

    def cmd(self, name, **args):
        """Runs a command; returns its 'return', raises on 'error'."""
        msg = {'execute': name}
        if args:
            msg['arguments'] = args
        self.s.sendall(json.dumps(msg).encode() + b'\n')
        while True:
            r = self._read()
            if 'event' in r:
                self.events.append(r)
                continue
            if 'error' in r:
                raise AssertionError('%s: %s' % (name, r['error']))
            return r['return']

    def wait_event(self, name, timeout):
        """The first event NAME (seen before or arriving within timeout s)."""
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events:
                if e['event'] == name:
                    self.events.remove(e)
                    return e
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('no %s event within %d s' % (name, timeout))
            self.s.settimeout(left)
            try:
                self.events.append(self._read())
            except socket.timeout:
                raise AssertionError('no %s event within %d s' % (name, timeout))

    def close(self):
        self.s.close()
