"""--otlp live: a real workload's events reach a receiver on 127.0.0.1 (which
parses every request against the official OTLP schema) exactly once, with
exact attributes; a collector answering 503 for a while loses nothing; one
that is down for the whole run costs an exact count of events, reported,
and a stop within the bounded wait, exit status 0."""
import json
import os
import re
import shlex
import shutil
import socket
import tempfile
import time

import pytest

from helpers import PYTHON, PYTHON_COMM, SLOWDOWN, Tracer, held_child, release, run_tool
from otlp_receiver import Receiver

OPENER = PYTHON + " -c 'import os, sys\nfor _ in range(int(sys.argv[2])): " \
                  "os.close(os.open(sys.argv[1], os.O_RDONLY))' "
BOUND = 30 * SLOWDOWN       # for a receiver's records


@pytest.fixture
def target():
    d = tempfile.mkdtemp(prefix="snooptools-otlp-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "target")
    open(path, "w").close()
    yield path
    shutil.rmtree(d)


def opens(target, n, receiver, *options, env=None):
    """A held child's n opens of target, traced by opensnoop --json with
    options (the export's among them); the Tracer when it has stopped,
    which is once receiver has n records (or at a bound)."""
    child = held_child(OPENER + "%s %d" % (target, n))
    with Tracer("opensnoop", "--pid", str(child.pid), "--path", target, *options,
                env=env) as t:
        rc, _, err = release(child)
        assert rc == 0, err
        receiver.wait(lambda recs: len(recs) >= n, BOUND)
    assert t.returncode == 0 and "Traceback" not in t.stderr
    return child, t


def machine_id():
    with open("/etc/machine-id") as f:
        return f.read().strip()


@pytest.mark.parametrize("protocol,content_type", [
    (None, "application/x-protobuf"),       # the default, as the OTel SDKs'
    ("http/json", "application/json")])
def test_every_event_arrives_once_with_its_attributes(target, protocol, content_type):
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": protocol} if protocol else None
    with Receiver() as r:
        child, t = opens(target, 3, r, "--otlp", r.url, env=env)
    assert r.errors == [] and "not exported" not in t.stderr
    assert set(r.content_types) == {content_type}
    lines = [line.rstrip("\n") for line in t.stdout.splitlines() if line.strip()]
    assert len(lines) == 3 and len(r.records) == 3
    # the body is the line the tool printed, the time its ts to the microsecond
    by_body = {rec.body: rec for rec in r.records}
    assert sorted(by_body) == sorted(lines)
    for line in lines:
        rec, ev = by_body[line], json.loads(line)
        ts = re.search(r'"ts":(\d+)\.(\d{6})', line)
        assert rec.time_ns == int(ts.group(1) + ts.group(2)) * 1000
        assert rec.time_ns <= rec.observed_ns < rec.time_ns + 60 * 10**9
        assert rec.attributes == {
            "process.pid": child.pid, "thread.id": child.pid, "process.real_user.id": 0,
            "process.executable.name": PYTHON_COMM, "snoop.cgroup_id": ev["cgroup_id"],
            "snoop.call": ev["call"], "file.path": target, "snoop.fd": ev["fd"],
            "snoop.err": 0, "snoop.flags": ev["flags"], "snoop.mode": ev["mode"]}
        assert ev["fd"] >= 0 and ev["call"] in ("open", "openat", "openat2")
        assert rec.resource == {"service.name": "opensnoop", "service.version": "0.1.0",
                                "host.name": socket.gethostname(), "host.id": machine_id()}


def test_otlp_only_sends_the_text_line_and_prints_nothing():
    with Receiver() as r:
        child = held_child("/bin/echo hello otlp")
        with Tracer("execsnoop", "--pid", str(child.pid), "--otlp-only", "--otlp", r.url,
                    json_mode=False) as t:
            rc, out, _ = release(child)
            assert rc == 0 and out == "hello otlp\n"
            r.wait(lambda recs: recs, BOUND)
    assert t.returncode == 0 and t.stdout == ""        # not even the header
    assert r.errors == []
    (rec,) = r.records
    assert rec.body.split() == ["echo", str(child.pid), str(os.getpid()), "0", "/bin/echo",
                                "hello", "otlp"]
    attrs = rec.attributes
    assert attrs["process.command_args"] == ["/bin/echo", "hello", "otlp"]
    assert (attrs["process.pid"], attrs["process.parent_pid"]) == (child.pid, os.getpid())
    assert (attrs["process.executable.name"], attrs["snoop.pcomm"]) == ("echo", PYTHON_COMM)
    assert (attrs["snoop.filename"], attrs["snoop.ret"], attrs["snoop.err"]) == ("/bin/echo", 0, 0)
    assert rec.resource["service.name"] == "execsnoop"


def test_otlp_only_bodies_are_the_lines_opensnoop_prints(target):
    """opensnoop's lines are made of their records' values alone, so with
    --otlp-only a line is made once per values (otlp.Encoder.lines_from):
    each body is still the very line a text opensnoop beside it prints for
    the event, for repeated opens, failing ones and another file."""
    other, missing = target + "-other", target + "-missing"
    open(other, "w").close()
    code = ("import os\n"
            "def try_open(path):\n"
            "    try:\n"
            "        os.close(os.open(path, os.O_RDONLY))\n"
            "    except OSError:\n"
            "        pass\n"
            "for path in [%r] * 4 + [%r] * 2 + [%r, %r]:\n"
            "    try_open(path)\n") % (target, missing, other, target)
    child = held_child("%s -c %s" % (PYTHON, shlex.quote(code)))
    where = ("--pid", str(child.pid), "--path", os.path.dirname(target))
    with Receiver() as r:
        with Tracer("opensnoop", *where, "--otlp-only", "--otlp", r.url, json_mode=False) as t, \
                Tracer("opensnoop", *where, json_mode=False) as printed:
            rc, _, err = release(child)
            assert rc == 0, err
            r.wait(lambda recs: len(recs) >= 8, BOUND)
    assert t.returncode == 0 and t.stdout == "" and r.errors == []
    assert "not exported" not in t.stderr and "Traceback" not in t.stderr
    head, *lines = printed.stdout.splitlines()
    assert head.split() == ["PID", "COMM", "FD", "ERR", "PATH"] and len(lines) == 8
    assert [rec.body for rec in r.records] == lines
    pid = str(child.pid)
    cells = [(rec.body.split()[:2], rec.body.split()[3:]) for rec in r.records]
    assert cells == [([pid, PYTHON_COMM], ["0", path]) for path in [target] * 4] + \
        [([pid, PYTHON_COMM], ["2", missing])] * 2 + \
        [([pid, PYTHON_COMM], ["0", other]), ([pid, PYTHON_COMM], ["0", target])]
    assert [rec.attributes["snoop.err"] for rec in r.records] == [0] * 4 + [2] * 2 + [0, 0]


def test_snoop_exports_each_event_named_as_its_tool_names_it(target):
    with Receiver() as r:
        child = held_child("/bin/cat " + target)
        with Tracer("snoop", "exec,open", "--pid", str(child.pid), "--otlp", r.url) as t:
            rc, _, err = release(child)
            assert rc == 0, err
            r.wait(lambda recs: any(rec.attributes.get("file.path") == target for rec in recs),
                   BOUND)
    assert t.returncode == 0 and r.errors == [] and "not exported" not in t.stderr
    lines = t.stdout.splitlines()
    assert sorted(rec.body for rec in r.records) == sorted(lines)
    by_body = {rec.body: rec for rec in r.records}
    events = [(json.loads(line), by_body[line].attributes) for line in lines]
    assert [ev["event"] for ev, _ in events][:2] == ["exec", "open"]
    for ev, attrs in events:
        assert attrs["event.name"] == ev["event"]
        assert (attrs["process.pid"], attrs["process.executable.name"]) == (child.pid, "cat")
    (exec_attrs,) = [a for ev, a in events if ev["event"] == "exec"]
    assert exec_attrs["process.command_args"] == ["/bin/cat", target]
    # an open's path is file.path, as opensnoop's own export names it
    assert [a for ev, a in events if ev["event"] == "open" and a.get("file.path") == target]
    assert {rec.resource["service.name"] for rec in r.records} == {"snoop"}


def test_a_collector_busy_for_a_while_loses_nothing(target):
    # the first three requests get 503; where to and the token come from
    # the environment, as with an OTel SDK. The collector recovers while the
    # tool runs: it is stopped once the receiver has what the tool read (or
    # at a bound), not while it still backs off (its stop waits only 5 s,
    # and three back-offs in a busy guest have taken longer)
    with Receiver(answer=lambda n: 503 if n < 3 else 200) as r:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": r.url,
               "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20s3cret"}
        child, t = opens(target, 5, r, "--otlp", "--summary", env=env)
    assert r.errors == [] and r.statuses[:4] == [503, 503, 503, 200]
    assert [h["Authorization"] for h in r.headers] == ["Bearer s3cret"] * r.requests
    assert sorted(rec.body for rec in r.records) == sorted(t.stdout.splitlines())
    assert len(r.records) == 5 and len(t.events) == 5
    assert "5 events, 0 lost, 0 not exported" in t.stderr      # --summary with --json
    assert "not exported:" not in t.stderr


def test_a_collector_down_for_the_whole_run_costs_an_exact_count(target):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    url = "http://127.0.0.1:%d/v1/logs" % s.getsockname()[1]
    s.close()                                   # nothing listens there now
    child = held_child(OPENER + "%s 4" % target)
    with Tracer("opensnoop", "--pid", str(child.pid), "--path", target, "--summary",
                "--otlp", url) as t:
        rc, _, err = release(child)
        assert rc == 0, err
        t0 = time.monotonic()
        t.stop()
        stopped_in = time.monotonic() - t0
    assert t.returncode == 0 and "Traceback" not in t.stderr
    assert len(t.events) == 4                  # stdout has them all the same
    assert "4 events not exported: the collector at %s did not take them within 5 s of the " \
           "stop (connection refused)\n" % url in t.stderr
    assert "4 events, 0 lost, 4 not exported" in t.stderr
    assert 5 <= stopped_in < 20                # the bounded wait, then out


@pytest.mark.parametrize("tool,args,message", [
    ("opensnoop", ["--otlp", "ftp://collector"], "http:// or https:// only"),
    ("opensnoop", ["--otlp-only"], "--otlp-only and --otlp-header go with --otlp"),
    ("opensnoop", ["--otlp", "--otlp-header", "novalue"], "invalid header 'novalue'"),
    ("bindsnoop", ["--count", "--otlp"], "not a table made at exit"),
])
def test_bad_export_arguments_exit_2(tool, args, message):
    r = run_tool(tool, *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
