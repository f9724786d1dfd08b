"""bindsnoop, live: a held child binds TCP and UDP sockets on IPv4 and IPv6
with socket options set, fails binds on purpose; events asserted field by
field."""
import errno
import json
import os
import socket
import subprocess

import pytest

from helpers import PYTHON, PYTHON_COMM, Tracer, release, run_tool

# Run by the held child: wait for a line on stdin, run the scenario argv[1]
# (with the ports argv[2] in PORTS), print what it bound as JSON:
# {name: [fd, port, errno]}.
CHILD = r"""
import json, os, socket, sys
from socket import AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM, SOL_SOCKET, SO_REUSEADDR
from socket import SO_REUSEPORT, SO_BINDTODEVICE
SOL_IP, SOL_IPV6 = 0, 41
IP_FREEBIND, IP_TRANSPARENT, IP_BIND_ADDRESS_NO_PORT, IPV6_FREEBIND = 15, 19, 24, 78
out, keep = {}, []
PORTS = [int(p) for p in sys.argv[2].split(",") if p]

def sock(family, kind, *opts):
    s = socket.socket(family, kind)
    keep.append(s)
    for level, opt, value in opts:
        s.setsockopt(level, opt, value)
    return s

def bind(name, s, addr):
    try:
        s.bind(addr)
        out[name] = [s.fileno(), s.getsockname()[1], 0]
    except OSError as e:
        out[name] = [s.fileno(), addr[1], e.errno]

sys.stdin.readline()
exec(sys.argv[1])
print(json.dumps(out))
"""

# The main scenario: four kinds of socket with options, two failures and a
# Unix socket (not an inet one: never reported).
BINDS = r"""
bind("tcp4", sock(AF_INET, SOCK_STREAM), ("127.0.0.1", 0))
bind("udp4", sock(AF_INET, SOCK_DGRAM, (SOL_SOCKET, SO_REUSEADDR, 1),
                  (SOL_SOCKET, SO_REUSEPORT, 1)), ("0.0.0.0", 0))
bind("tcp6", sock(AF_INET6, SOCK_STREAM, (SOL_IPV6, IPV6_FREEBIND, 1),
                  (SOL_SOCKET, SO_REUSEADDR, 1)), ("::1", 0))
bind("udp6", sock(AF_INET6, SOCK_DGRAM, (SOL_SOCKET, SO_BINDTODEVICE, b"lo")), ("::1", 0))
bind("freebind", sock(AF_INET, SOCK_STREAM, (SOL_IP, IP_FREEBIND, 1),
                      (SOL_IP, IP_TRANSPARENT, 1)), ("192.0.2.1", 0))
bind("noport", sock(AF_INET, SOCK_STREAM, (SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)),
     ("127.0.0.1", 0))
bind("inuse", sock(AF_INET, SOCK_STREAM), ("127.0.0.1", out["tcp4"][1]))
bind("notavail", sock(AF_INET, SOCK_STREAM), ("192.0.2.1", 4242))
u = sock(socket.AF_UNIX, SOCK_STREAM)
u.bind("\0bindsnoop-test-%d" % os.getpid())
"""

LO = socket.if_nametoindex("lo")


def run(scenario, *args, json_mode=True, ports=()):
    """Trace the held child running scenario (which finds ports in PORTS),
    filtered to its pid; return (tracer, child pid, what the child bound)."""
    child = subprocess.Popen([PYTHON, "-c", CHILD, scenario, ",".join(map(str, ports))],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    with Tracer("bindsnoop", "--pid", str(child.pid), *args, json_mode=json_mode) as t:
        rc, out, err = release(child)
    assert rc == 0, err
    assert t.returncode == 0, t.stderr
    return t, child.pid, json.loads(out)


def mine(t, pid):
    return [e for e in t.events if e["pid"] == pid]


def brief(e):
    return (e["fd"], e["proto"], e["ip"], e["addr"], e["port"], e["req_port"], e["opts"],
            e["bound_dev_if"], e["ret"], e["err"])


def expected(b):
    """The events of BINDS, by name, from what the child saw."""
    def ok(name, proto, ip, addr, opts, dev=0):
        fd, port, err = b[name]
        assert err == 0, (name, os.strerror(err))
        return (fd, proto, ip, addr, port, 0, opts, dev, 0, 0)

    def failed(name, addr, err):
        fd, port, got = b[name]
        assert got == err, (name, os.strerror(got))
        return (fd, "TCP", 4, addr, port, port, ".....", 0, -err, err)

    return {
        "tcp4": ok("tcp4", "TCP", 4, "127.0.0.1", "....."),
        "udp4": ok("udp4", "UDP", 4, "0.0.0.0", "...Rr"),
        "tcp6": ok("tcp6", "TCP", 6, "::1", "F..R."),
        "udp6": ok("udp6", "UDP", 6, "::1", ".....", dev=LO),
        "freebind": ok("freebind", "TCP", 4, "192.0.2.1", "FT..."),
        "noport": ok("noport", "TCP", 4, "127.0.0.1", "..N.."),
        "inuse": failed("inuse", "127.0.0.1", errno.EADDRINUSE),
        "notavail": failed("notavail", "192.0.2.1", errno.EADDRNOTAVAIL),
    }


def test_tcp_udp_ipv4_ipv6_exact_fields_and_errors():
    t, pid, b = run(BINDS, "-E")
    want = expected(b)
    evs = mine(t, pid)
    assert [brief(e) for e in evs] == list(want.values())
    assert LO == 1 and b["noport"][1] == 0 and b["tcp4"][1] > 0 and b["freebind"][1] > 0
    for e in evs:
        assert (e["pid"], e["tid"], e["comm"], e["uid"]) == (pid, pid, PYTHON_COMM, os.getuid())
        assert e["protocol"] == {"TCP": 6, "UDP": 17}[e["proto"]]


def test_failed_binds_only_with_errors():
    t, pid, b = run(BINDS)
    want = expected(b)
    assert [brief(e) for e in mine(t, pid)] == [v for k, v in want.items()
                                                 if k not in ("inuse", "notavail")]
    t, pid, b = run(BINDS, "--failed")
    want = expected(b)
    assert [brief(e) for e in mine(t, pid)] == [want["inuse"], want["notavail"]]


def free_ports(n):
    """n ports free for UDP on 127.0.0.1 right now."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


PORTS = r"""
p1, p2 = PORTS
bind("p1", sock(AF_INET, SOCK_DGRAM), ("127.0.0.1", p1))
bind("p2", sock(AF_INET6, SOCK_DGRAM), ("::1", p2))
bind("p1again", sock(AF_INET, SOCK_DGRAM), ("127.0.0.1", p1))
"""


def test_port_filter_both_ways():
    p1, p2, p3 = free_ports(3)
    t, pid, b = run(PORTS, "-E", "-P", str(p1), ports=(p1, p2))
    assert [(e["addr"], e["port"], e["err"]) for e in mine(t, pid)] == \
        [("127.0.0.1", p1, 0), ("127.0.0.1", p1, errno.EADDRINUSE)]
    t, pid, b = run(PORTS, "--port", "%d,%d" % (p3, p2), ports=(p1, p2))
    assert [(e["fd"], e["addr"], e["port"]) for e in mine(t, pid)] == [(b["p2"][0], "::1", p2)]
    t, pid, b = run(PORTS, "-E", "-P", str(p3), ports=(p1, p2))
    assert mine(t, pid) == []


NOBODY = r"""
os.setresgid(65534, 65534, 65534)
os.setgroups([])
os.setresuid(65534, 65534, 65534)
bind("udp", sock(AF_INET, SOCK_DGRAM), ("127.0.0.1", 0))
"""


def test_uid_filter_both_ways_and_uid_column():
    t, pid, b = run(NOBODY, "-u", "65534")
    assert [(e["uid"], e["port"]) for e in mine(t, pid)] == [(65534, b["udp"][1])]
    t, pid, b = run(NOBODY, "--uid", "0")
    assert mine(t, pid) == []
    t, pid, b = run(NOBODY, "-U", json_mode=False)
    header, *rows = t.stdout.splitlines()
    assert header.split() == ["UID", "PID", "COMM", "PROT", "ADDR", "PORT", "OPTS", "IF"]
    assert [r.split() for r in rows] == [
        ["65534", str(pid), PYTHON_COMM, "UDP", "127.0.0.1", str(b["udp"][1]), ".....", "0"]]


def test_text_columns():
    t, pid, b = run(BINDS, "-E", "-t", json_mode=False)
    header, *lines = t.stdout.splitlines()
    assert header == "TIME(s)    RC      PID COMM         PROT ADDR            PORT   OPTS IF"
    rows = [line.split() for line in lines]
    assert [r[1:] for r in rows[:2]] == [
        ["0", str(pid), PYTHON_COMM, "TCP", "127.0.0.1", str(b["tcp4"][1]), ".....", "0"],
        ["0", str(pid), PYTHON_COMM, "UDP", "0.0.0.0", str(b["udp4"][1]), "...Rr", "0"]]
    assert rows[3][-1] == str(LO) and rows[6][1] == str(-errno.EADDRINUSE)
    for r in rows:
        assert len(r[0].split(".")[1]) == 6 and float(r[0]) >= 0


def test_wide_columns_show_error_text():
    t, pid, b = run(BINDS, "-w", "--failed", json_mode=False)
    header, *lines = t.stdout.splitlines()
    assert header == "%-25s %10s %-12s %-4s %-39s %-5s %5s %2s" % (
        "RC", "PID", "COMM", "PROT", "ADDR", "PORT", "OPTS", "IF")
    assert lines == ["%-25s %10d %-12s %-4s %-39s %5d %-5s %2d" % (
        os.strerror(err), pid, PYTHON_COMM, "TCP", addr, port, ".....", 0)
        for addr, port, err in (("127.0.0.1", b["tcp4"][1], errno.EADDRINUSE),
                                ("192.0.2.1", 4242, errno.EADDRNOTAVAIL))]


COUNT = r"""
for i in range(3):
    s = sock(AF_INET6, SOCK_DGRAM, (SOL_SOCKET, SO_REUSEADDR, 1))
    bind("udp6", s, ("::1", PORTS[0]))
    s.close()
bind("tcp6", sock(AF_INET6, SOCK_STREAM), ("::1", PORTS[0]))
bind("tcp4", sock(AF_INET, SOCK_STREAM), ("127.0.0.1", 0))
bind("inuse", sock(AF_INET, SOCK_STREAM), ("127.0.0.1", out["tcp4"][1]))
"""


def test_count_table_at_exit():
    [port] = free_ports(1)
    # BCC's table: binds by address and port (UDP and TCP on one port: one row)
    t, pid, b = run(COUNT, "--count", json_mode=False, ports=[port])
    assert t.stdout.splitlines() == [
        "%-32s %20s     %s" % ("LADDR", "LPORT", "BINDS"),
        "%-32s %20d     %d" % ("::1", port, 4),
        "%-32s %20d     %d" % ("127.0.0.1", b["tcp4"][1], 1)]
    # -e: by process and protocol too; -E adds the failed bind, with its RC
    t, pid, b = run(COUNT, "--count", "-e", "-E", json_mode=False, ports=[port])
    assert t.stdout.splitlines() == [
        "%3s %8s %-12s %-4s %-32s %20s     %s" % ("RC", "PID", "COMM", "PROT", "LADDR",
                                                 "LPORT", "BINDS"),
        "%3d %8d %-12s %-4s %-32s %20d     %d" % (0, pid, PYTHON_COMM, "UDP", "::1", port, 3),
        "%3d %8d %-12s %-4s %-32s %20d     %d" % (0, pid, PYTHON_COMM, "TCP", "::1", port, 1),
        "%3d %8d %-12s %-4s %-32s %20d     %d" % (0, pid, PYTHON_COMM, "TCP", "127.0.0.1",
                                                 b["tcp4"][1], 1),
        "%3d %8d %-12s %-4s %-32s %20d     %d" % (-errno.EADDRINUSE, pid, PYTHON_COMM, "TCP",
                                                 "127.0.0.1", b["tcp4"][1], 1)]
    # JSON: a row per process, protocol, address, port and result, -e or not
    t, pid, b = run(COUNT, "--count", "-E", ports=[port])
    assert t.events == [
        {"pid": pid, "comm": PYTHON_COMM, "proto": proto, "addr": addr, "port": p,
         "ret": -err, "err": err, "binds": n}
        for proto, addr, p, err, n in (("UDP", "::1", port, 0, 3),
                                       ("TCP", "::1", port, 0, 1),
                                       ("TCP", "127.0.0.1", b["tcp4"][1], 0, 1),
                                       ("TCP", "127.0.0.1", b["tcp4"][1], errno.EADDRINUSE, 1))]


@pytest.mark.parametrize("bad", [["-P", "x"], ["-P", "70000"], ["-P", "80,"],
                                 ["-u", "no-such-user"]])
def test_bad_arguments_exit_2(bad):
    r = run_tool("bindsnoop", *bad)
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr
