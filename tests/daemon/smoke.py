#!/usr/bin/env python3
"""Smoke test of qblk-storage-daemon's monitor and process handling:
greeting, negotiation, bad JSON, two clients at once, a client that sends
and disconnects, a huge token, --daemonize + --pidfile, SIGTERM and quit
cleanup, command-line errors. Usage: smoke.py <qblk-storage-daemon>"""
import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

DAEMON = sys.argv[1]
TMP = tempfile.mkdtemp(prefix='qblk-qsd-smoke-')
failures = []
started = []


@atexit.register
def kill_leftovers():
    # a failed run must not leave a daemon behind
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


passed = 0


def check(cond, what):
    global passed
    passed += cond and 1 or 0
    if not cond:
        failures.append(what)
        print('FAIL:', what, flush=True)


def wait_for(pred, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(20)
        # the socket file exists from bind() on, a moment before listen()
        for _ in range(100):
            try:
                self.sock.connect(path)
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
        self.buf = b''

    def recv(self):
        while b'\r\n' not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError('connection closed')
            self.buf += data
        line, self.buf = self.buf.split(b'\r\n', 1)
        return json.loads(line)

    def send_raw(self, data):
        self.sock.sendall(data)

    def cmd(self, name, args=None, **extra):
        msg = {'execute': name}
        if args is not None:
            msg['arguments'] = args
        msg.update(extra)
        self.send_raw(json.dumps(msg).encode())
        return self.recv()

    def close(self):
        self.sock.close()


def start(*args):
    sock = os.path.join(TMP, 'qmp.sock')
    proc = subprocess.Popen([DAEMON, '--chardev',
                             'socket,id=m0,path=%s,server=on,wait=off' % sock,
                             '--monitor', 'chardev=m0', *args],
                            stderr=subprocess.DEVNULL)
    started.append(proc)
    check(wait_for(lambda: os.path.exists(sock)), 'monitor socket appears')
    return proc, sock


def peak_rss(pid):
    with open('/proc/%d/status' % pid) as f:
        return [int(l.split()[1]) for l in f if l.startswith('VmHWM')][0]


def err(reply):
    e = reply.get('error', {})
    return (e.get('class'), e.get('desc'))


def test_protocol():
    proc, sock = start()
    a = Client(sock)
    g = a.recv()
    check(g['QMP']['version']['qemu'] == {'major': 7, 'minor': 2, 'micro': 0}, 'greeting version')
    check(g['QMP']['version']['package'].startswith('qblk '), 'greeting package')
    check(g['QMP']['capabilities'] == ['oob'], 'greeting capabilities')
    check(err(a.cmd('query-version')) == ('CommandNotFound',
          "Expecting capabilities negotiation with 'qmp_capabilities'"), 'before negotiation')
    check(a.cmd('qmp_capabilities', id='n1') == {'return': {}, 'id': 'n1'}, 'negotiation')
    check(err(a.cmd('qmp_capabilities')) == ('CommandNotFound',
          'Capabilities negotiation is already complete, command ignored'), 'twice')
    r = a.cmd('query-version', id=[1, {'x': None}])
    check(r.get('id') == [1, {'x': None}] and r['return']['qemu']['major'] == 7, 'id echoed')
    check(err(a.cmd('no-such-command')) == ('CommandNotFound',
          'The command no-such-command has not been found'), 'unknown command')
    check(err(a.cmd('query-version', {'bogus': 1})) == ('GenericError',
          "Parameter 'bogus' is unexpected"), 'extra argument')
    a.send_raw(b'{"execute":}')
    check(err(a.recv()) == ('GenericError', 'JSON parse error, expecting value'), 'bad JSON')
    a.send_raw(b'[1]')
    check(err(a.recv()) == ('GenericError', 'QMP input must be a JSON object'), 'not an object')
    a.send_raw(b"{'execute': 'query-version', 'id': 'sq'}{\"execute\"")
    check(a.recv().get('id') == 'sq', 'single quotes')
    a.send_raw(b': "query-commands", "id": "split"}')
    r = a.recv()
    check(r.get('id') == 'split' and {'name': 'quit'} in r['return'], 'split message')
    names = [e['name'] for e in a.cmd('query-qmp-schema')['return']]
    check('query-qmp-schema' in names and 'qmp_capabilities' in names, 'schema lists commands')

    # a second client at once has its own negotiation state
    b = Client(sock)
    b.recv()
    check(err(b.cmd('query-version'))[0] == 'CommandNotFound', 'second client not negotiated')
    check(b.cmd('qmp_capabilities') == {'return': {}}, 'second client negotiates')
    check('return' in a.cmd('query-version'), 'first client still served')

    # a client that sends a burst and disconnects without reading
    c = Client(sock)
    c.recv()
    c.send_raw(b'{"execute":"qmp_capabilities"}' + b'{"execute":"query-qmp-schema"}' * 200)
    c.close()
    # and one that disconnects in the middle of a message
    d = Client(sock)
    d.send_raw(b'{"execute": "qmp_capa')
    d.close()
    check('return' in b.cmd('query-version'), 'daemon survives disconnects')

    # a 300 MiB token without end: QEMU's limit error (64 MiB), and the
    # daemon's peak memory grows by less than the flood (also under ASan,
    # whose quarantine keeps freed buffers for a while)
    hwm_before = peak_rss(proc.pid)
    e = Client(sock)
    e.recv()
    e.cmd('qmp_capabilities')
    chunk = b'a' * (1 << 20)
    e.send_raw(b'"')
    for _ in range(300):
        e.send_raw(chunk)
    check(err(e.recv()) == ('GenericError', 'JSON token size limit exceeded'), 'token limit')
    e.send_raw(b'\n{"execute": "query-version", "id": "after"}')
    while True:
        r = e.recv()
        if 'return' in r:
            break
    check(r.get('id') == 'after', 'serving after the limit')
    grown = peak_rss(proc.pid) - hwm_before
    check(grown < 280 * 1024, 'peak RSS grew %d KiB for a 300 MiB flood' % grown)

    check(a.cmd('quit') == {'return': {}}, 'quit replies')
    check(proc.wait(timeout=20) == 0, 'quit exits 0')
    check(not os.path.exists(sock), 'socket removed at exit')


def test_daemonize():
    sock = os.path.join(TMP, 'd.sock')
    pidfile = os.path.join(TMP, 'd.pid')
    r = subprocess.run([DAEMON, '--daemonize', '--pidfile', pidfile, '--chardev',
                        'socket,id=m0,path=%s,server=on,wait=off' % sock,
                        '--monitor', 'chardev=m0'], timeout=20)
    check(r.returncode == 0, 'daemonize parent exits 0')
    # the parent left only once the monitor listened
    check(os.path.exists(sock), 'socket listens when the parent exits')
    pid = int(open(pidfile).read())
    a = Client(sock)
    check('QMP' in a.recv(), 'daemonized greeting')
    os.kill(pid, signal.SIGTERM)
    check(wait_for(lambda: not os.path.exists('/proc/%d' % pid) or
                   open('/proc/%d/stat' % pid).read().split()[2] == 'Z'), 'SIGTERM stops it')
    check(not os.path.exists(pidfile), 'pidfile removed')
    check(not os.path.exists(sock), 'socket removed')

    # an error before the monitor listens: the parent reports it, exit 1
    r = subprocess.run([DAEMON, '--daemonize', '--chardev',
                        'socket,id=m0,path=/nonexistent/x.sock,server=on,wait=off'],
                       stderr=subprocess.PIPE, timeout=20)
    check(r.returncode == 1 and b'Failed to bind socket to /nonexistent/x.sock' in r.stderr,
          'daemonize error reported: %r' % r.stderr)


def test_signals():
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        proc, sock = start()
        a = Client(sock)
        a.recv()
        proc.send_signal(sig)
        check(proc.wait(timeout=20) == 0, 'signal %d exits 0' % sig)
        check(not os.path.exists(sock), 'socket removed after signal %d' % sig)


def test_cli():
    cases = [
        (['--nbd-server', 'addr.type=unix'],
         b"--nbd-server addr.type=unix: Parameter 'addr.path' is missing"),
        (['--nbd-server', 'addr.type=unix,addr.path=/nonexistent/n.sock'],
         b'Failed to bind socket to /nonexistent/n.sock'),
        (['--export', 'type=nbd,id=e,node-name=n'], b'--export type=nbd,id=e,node-name=n: '
         b'NBD server not running'),
        (['--nbd-server', 'addr.type=unix,addr.path=%s' % os.path.join(TMP, 'cli.sock'),
          '--export', 'type=nbd,id=e,node-name=nosuch'],
         b"Cannot find device='' nor node-name='nosuch'"),
        (['--object', 'secret,id=s0,data=x'], b'--object secret,id=s0,data=x: --object is not'),
        (['--monitor', 'chardev=nosuch'], b'--monitor chardev=nosuch: chardev "nosuch" not found'),
        (['--monitor', 'mode=control'], b"Parameter 'chardev' is missing"),
        (['--chardev', 'socket,path=/tmp/x,server=on,wait=off'], b'chardev: no id specified'),
        (['--bogus'], b"unrecognized option '--bogus'"),
        (['extra'], b'extra: Unexpected argument'),
        (['--blockdev', '{'], b'--blockdev {: JSON parse error, premature EOI'),
        # the JSON form goes through blockdev-add's schema check
        (['--blockdev', '{"driver":"raw","file":{"driver":"file","filename":"x","bogus":1}}'],
         b"Parameter 'file.bogus' is unexpected"),
    ]
    for args, msg in cases:
        r = subprocess.run([DAEMON, *args], stderr=subprocess.PIPE, timeout=20)
        check(r.returncode == 1 and msg in r.stderr, 'cli %s: %r' % (args, r.stderr))
    r = subprocess.run([DAEMON, '-V'], stdout=subprocess.PIPE, timeout=20)
    check(r.returncode == 0 and b'version' in r.stdout, '-V')
    r = subprocess.run([DAEMON, '-h'], stdout=subprocess.PIPE, timeout=20)
    check(r.returncode == 0 and b'--blockdev' in r.stdout, '-h')


def test_monitor_waits_for_command_line():
    """A client that connects at once is served only after every --blockdev
    is open: opening yields to the event loop, and a command run in that
    window saw nodes half opened (a stream found no backing yet)."""
    n = 24
    base = os.path.join(TMP, 'wb.raw')
    with open(base, 'wb') as f:
        f.truncate(1 << 20)
    args = ['--blockdev', 'driver=file,node-name=wbf,filename=%s,read-only=on' % base,
            '--blockdev', 'driver=raw,node-name=wb,file=wbf,read-only=on']
    for i in range(n):
        img = os.path.join(TMP, 'w%d.qcow2' % i)
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw',
                        img], check=True)
        args += ['--blockdev', 'driver=qcow2,node-name=w%d,backing=wb,'
                 'file.driver=file,file.filename=%s' % (i, img)]
    proc, sock = start(*args)
    a = Client(sock)
    a.recv()
    a.cmd('qmp_capabilities')
    nodes = a.cmd('query-named-block-nodes', {'flat': True})['return']
    tops = [x for x in nodes if x['node-name'].startswith('w') and x['drv'] == 'qcow2']
    check(len(tops) == n and all(x.get('backing_file') for x in tops),
          'the first command sees every --blockdev node complete (%d of %d)' % (len(tops), n))
    proc.send_signal(signal.SIGTERM)
    check(proc.wait(timeout=20) == 0, 'SIGTERM exits 0')


def test_blockdev():
    """Both --blockdev forms, then a client that hangs up right after a
    blockdev-add (a command that yields), then SIGTERM with nodes open."""
    img = os.path.join(TMP, 'n.raw')
    img1 = os.path.join(TMP, 'n1.raw')
    for path in (img, img1):
        with open(path, 'wb') as f:
            f.truncate(1 << 20)
    proc, sock = start('--blockdev', 'driver=file,node-name=f0,filename=%s' % img,
                       '--blockdev', '{"driver": "raw", "node-name": "r0", "file": "f0"}')
    a = Client(sock)
    a.recv()
    a.cmd('qmp_capabilities')
    names = [n['node-name'] for n in a.cmd('query-named-block-nodes')['return']]
    check(sorted(names) == ['f0', 'r0'], '--blockdev nodes: %r' % names)
    b = Client(sock)
    b.recv()
    b.cmd('qmp_capabilities')
    # started as soon as it is read, so it runs when the hang-up is seen
    b.send_raw(b'{"execute":"blockdev-add","arguments":'
               b'{"driver":"file","node-name":"f1","filename":"%s"}}' % img1.encode())
    b.close()
    names = []
    for _ in range(100):
        names = [n['node-name'] for n in a.cmd('query-named-block-nodes')['return']]
        if 'f1' in names:
            break
        time.sleep(0.02)
    check('f1' in names, 'the command of a client that hung up completed: %r' % names)
    proc.send_signal(signal.SIGTERM)
    check(proc.wait(timeout=20) == 0, 'SIGTERM with nodes open exits 0')


def test_nbd_exports():
    """--nbd-server and --export (dotted keys and JSON) serve NBD clients;
    shutdown removes the NBD socket and leaves the image clean."""
    img = os.path.join(TMP, 'x.qcow2')
    nsock = os.path.join(TMP, 'nbd.sock')
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', img, '4M'], check=True)
    proc, sock = start('--blockdev', 'driver=file,node-name=xf,filename=%s' % img,
                       '--blockdev', 'driver=qcow2,node-name=x,file=xf',
                       '--nbd-server', 'addr.type=unix,addr.path=%s,max-connections=4' % nsock,
                       '--export', 'nbd,id=e0,node-name=x,name=disk,writable=on,'
                       'description=hello,allocation-depth=yes',
                       '--export', '{"type": "nbd", "id": "e1", "node-name": "x", "name": "ro"}')
    a = Client(sock)
    a.recv()
    a.cmd('qmp_capabilities')
    exports = a.cmd('query-block-exports')['return']
    check(sorted(e['id'] for e in exports) == ['e0', 'e1'], 'query-block-exports: %r' % exports)
    r = subprocess.run(['qemu-io', '-f', 'raw', '-c', 'write -P 0x42 64k 64k',
                        'nbd+unix:///disk?socket=%s' % nsock], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    check(r.returncode == 0 and b'wrote 65536/65536' in r.stdout, 'write over NBD: %r' % r.stdout)
    r = subprocess.run(['nbdinfo', '--list', 'nbd+unix:///?socket=%s' % nsock],
                       stdout=subprocess.PIPE, timeout=20)
    out = r.stdout.decode()
    check('description: hello' in out and 'qemu:allocation-depth' in out and
          'export="ro"' in out, 'nbdinfo --list: %r' % out)
    check('can_multi_conn: true' in out, 'multi-conn with max-connections=4')
    # safe removal refuses while a client is connected; hard removal drops it
    mark = os.path.join(TMP, 'connected')
    holder = subprocess.Popen(['/usr/bin/python3', '-m', 'nbd', '-u', 'nbd+unix:///ro?socket=%s' % nsock, '-c',
                               'open(%r, "w").close(); import time; time.sleep(30)' % mark],
                              stderr=subprocess.DEVNULL)
    started.append(holder)
    check(wait_for(lambda: os.path.exists(mark)), 'nbdsh connected')
    r = a.cmd('block-export-del', {'id': 'e1'})
    check(err(r) == ('GenericError', "export 'e1' still in use"),
          'block-export-del safe refuses an export in use: %r' % r)
    r = a.cmd('block-export-del', {'id': 'e1', 'mode': 'hard'})
    check(r.get('return') == {}, 'block-export-del hard: %r' % r)
    msgs = []
    while not any(m.get('event') == 'BLOCK_EXPORT_DELETED' for m in msgs):
        msgs.append(a.recv())
    check(msgs[-1].get('data') == {'id': 'e1'}, 'BLOCK_EXPORT_DELETED e1: %r' % msgs)
    exports = a.cmd('query-block-exports')['return']
    check([e['id'] for e in exports] == ['e0'], 'e1 gone: %r' % exports)
    holder.kill()
    holder.wait()
    r = subprocess.run(['qemu-io', '-f', 'raw', '-c', 'write 0 512',
                        'nbd+unix:///ro?socket=%s' % nsock], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    check(r.returncode != 0, 'read-only export refuses a writer: %r' % r.stdout)
    proc.send_signal(signal.SIGTERM)
    check(proc.wait(timeout=20) == 0, 'SIGTERM with exports exits 0')
    check(not os.path.exists(nsock), 'NBD socket removed at exit')
    r = subprocess.run(['qemu-io', '-f', 'qcow2', '-c', 'read -P 0x42 64k 64k', img],
                       stdout=subprocess.PIPE, timeout=20)
    check(b'read 65536/65536' in r.stdout, 'written data in the image: %r' % r.stdout)
    r = subprocess.run(['qemu-img', 'check', '-q', img], timeout=20)
    check(r.returncode == 0, 'image clean after shutdown')
    # max-connections=1 withdraws multi-conn (QEMU 5.2 on)
    proc, sock = start('--blockdev', 'driver=file,node-name=xf,filename=%s' % img,
                       '--blockdev', 'driver=qcow2,node-name=x,file=xf',
                       '--nbd-server', '{"addr": {"type": "unix", "path": "%s"}, '
                       '"max-connections": 1}' % nsock,
                       '--export', 'type=nbd,id=e0,node-name=x,writable=on')
    check(wait_for(lambda: os.path.exists(nsock)), 'NBD socket appears')
    r = subprocess.run(['nbdinfo', 'nbd+unix:///x?socket=%s' % nsock], stdout=subprocess.PIPE,
                       timeout=20)
    check(b'can_multi_conn: false' in r.stdout, 'no multi-conn with max-connections=1: %r'
          % r.stdout)
    proc.send_signal(signal.SIGTERM)
    check(proc.wait(timeout=20) == 0, 'second daemon exits 0')
    # guest copy-on-read: a copy-on-read filter's export populates the
    # overlay on every read, the ranges that read as zeroes too
    base = os.path.join(TMP, 'gbase.raw')
    top = os.path.join(TMP, 'gtop.qed')
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'raw', base, '8M'], check=True)
    subprocess.run(['qemu-io', '-f', 'raw', '-c', 'write -P 0x5a 0 2M', '-c',
                    'write -P 0x11 6M 1M', base], stdout=subprocess.DEVNULL, check=True)
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qed', '-b', base, '-F', 'raw', top],
                   check=True)
    proc, sock = start('--blockdev', 'driver=file,node-name=bf,filename=%s,read-only=on' % base,
                       '--blockdev', 'driver=raw,node-name=base,file=bf,read-only=on',
                       '--blockdev', 'driver=qed,node-name=top,backing=base,'
                       'file.driver=file,file.filename=%s' % top,
                       '--blockdev', 'driver=copy-on-read,node-name=cor,file=top',
                       '--nbd-server', 'addr.type=unix,addr.path=%s' % nsock,
                       '--export', 'type=nbd,id=e0,node-name=cor,name=disk')
    check(wait_for(lambda: os.path.exists(nsock)), 'NBD socket appears')
    r = subprocess.run(['nbdcopy', 'nbd+unix:///disk?socket=%s' % nsock, 'null:'], timeout=60)
    check(r.returncode == 0, 'nbdcopy through the copy-on-read export')
    proc.send_signal(signal.SIGTERM)
    check(proc.wait(timeout=20) == 0, 'copy-on-read daemon exits 0')
    m = json.loads(subprocess.run(['qemu-img', 'map', '--output=json', top],
                                  stdout=subprocess.PIPE, timeout=20).stdout)
    check(all(e['depth'] == 0 for e in m), 'every range read is in the overlay: %r' % m)
    check(sum(e['length'] for e in m if e['data']) == 3 << 20,
          'zeroes stored as zero clusters, only the 3 MiB of data as data: %r' % m)
    r = subprocess.run(['qemu-img', 'compare', '-q', top, base], timeout=20)
    check(r.returncode == 0, 'overlay reads as the base')


test_protocol()
test_nbd_exports()
test_monitor_waits_for_command_line()
test_blockdev()
test_daemonize()
test_signals()
test_cli()
# The summary line scripts/run-tests.sh counts: one per check.
print('daemon smoke: %d passed, %d failed' % (passed, len(failures)))
sys.exit(1 if failures else 0)
