"""compactsnoop, live: a held child writes 1 to /proc/sys/vm/compact_memory,
which compacts every populated zone of every node in turn (order -1, sync);
its runs are asserted field by field against /proc/zoneinfo. Where the
kernel's mm_compaction_begin passes no struct compact_control, each test
asserts instead the one line compactsnoop says."""
import functools
import os
import re

import pytest

from helpers import SLOWDOWN, Tracer, held_child, release, run_tool
from snooptools import kernel

COMPACT = "/bin/sh -c 'echo 1 > /proc/sys/vm/compact_memory'"


def zoneinfo():
    """{(node, zone): {"present": n, "managed": n, "min": n, ...}} in /proc/zoneinfo order."""
    zones, cur = {}, None
    with open("/proc/zoneinfo") as f:
        for line in f:
            m = re.match(r"Node (\d+), zone +(\S+)", line)
            if m:
                cur = zones.setdefault((int(m.group(1)), m.group(2)), {})
                continue
            words = line.split()
            if cur is not None and len(words) == 2 and words[0] in (
                    "present", "managed", "min", "low", "high") and words[1].isdigit():
                cur.setdefault(words[0], int(words[1]))
    return zones


def populated():
    """The zones compact_memory compacts, in its order: present pages > 0."""
    return [key for key, z in zoneinfo().items() if z["present"] > 0]


# A full (order -1) run completes, unless another task holds too many pages
# isolated (reclaim or migration elsewhere on the machine): it then stops
# early as "contended". Both are real outcomes; nothing else is.
DONE = ("complete", "contended")


REFUSED = ("compactsnoop: tracepoint mm_compaction_begin passes no struct compact_control on "
           "this kernel: compactsnoop reads each run's zone, node and order from it\n")


def or_refused(test):
    """The test where the kernel passes compactsnoop what it needs; else
    compactsnoop's one line, exit status 1."""
    @functools.wraps(test)
    def run(*args, **kw):
        begin = kernel.raw_tracepoint_args("mm_compaction_begin")
        if begin[:1] == ("struct compact_control *",):
            return test(*args, **kw)
        r = run_tool("compactsnoop")
        assert (r.returncode, r.stdout, r.stderr) == (1, "", REFUSED)
    return run


def compact(*args, json_mode=True):
    """Trace one compact_memory write by a held child; (tracer, child pid)."""
    child = held_child(COMPACT)
    if "--pid" not in args and "-p" not in args:
        args += ("--pid", str(child.pid))
    try:
        # A whole machine's compaction takes seconds, or a minute where QEMU
        # emulates the CPU (a -K test in the 6.1 guest's full run, after the
        # container tests, 57 s where it takes 6 s alone); -K reads kallsyms
        # before it is ready.
        with Tracer("compactsnoop", *args, json_mode=json_mode,
                    ready_timeout=60 * SLOWDOWN) as t:
            rc, _, err = release(child, timeout=60 * SLOWDOWN)
    finally:
        if child.poll() is None:    # the tracer did not start: no compaction
            child.kill()
            child.wait()
    assert rc == 0, err
    assert t.returncode == 0, t.stderr
    return t, child.pid


@or_refused
def test_proc_compaction_every_zone_exact_fields():
    t, pid = compact()
    task = {"pid": pid, "tid": pid, "uid": os.getuid(), "comm": "sh"}
    evs = t.events
    assert [{k: v for k, v in e.items() if k not in ("ts", "lat_ms", "status", "cgroup_id")}
            for e in evs] == [dict(task, node=node, zone=zone, order=-1, sync=True)
                              for node, zone in populated()]
    assert all(e["status"] in DONE for e in evs)
    for e in evs:
        assert isinstance(e["lat_ms"], float) and 0 <= e["lat_ms"] < 60000
    # one zone after another: each run begins after the previous one ended
    for a, b in zip(evs, evs[1:]):
        assert b["ts"] >= a["ts"] + a["lat_ms"] / 1000 - 1e-6


@or_refused
def test_extended_fields_match_zoneinfo():
    before = zoneinfo()
    t, pid = compact("-e")
    after = zoneinfo()
    evs = t.events
    assert [(e["node"], e["zone"]) for e in evs] == populated()
    for e in evs:
        key = (e["node"], e["zone"])
        assert e["fragidx"] is None                 # order -1: no order to rate
        # watermarks move when the zone's managed pages do (memory hotplug,
        # balloon): the kernel's value at the run lies between two readings
        for name in ("min", "low", "high"):
            lo, hi = sorted((before[key][name], after[key][name]))
            assert lo <= e["wmark_" + name] <= hi, (key, name, e)
        assert e["wmark_min"] < e["wmark_low"] < e["wmark_high"]
        assert 0 < e["free_pages"] <= max(before[key]["managed"], after[key]["managed"])


@or_refused
def test_pid_filter_both_ways():
    t, pid = compact("--pid", str(os.getpid()))
    assert t.events == []
    t, pid = compact("-p", "1,%d" % os.getpid(), "--comm", "sh")
    assert t.events == []


@or_refused
def test_min_ms_filter_both_ways():
    t, pid = compact("--min-ms", "0.000001")
    assert [(e["pid"], e["zone"]) for e in t.events] == [(pid, z) for _, z in populated()]
    assert all(e["lat_ms"] >= 0.000001 for e in t.events)
    t, pid = compact("-m", "60000")
    assert t.events == []


@or_refused
def test_text_columns_bcc_layout():
    t, pid = compact("-T", "-e", json_mode=False)
    header, *lines = t.stdout.splitlines()
    assert header.split() == ["TIME(s)", "COMM", "PID", "NODE", "ZONE", "ORDER", "MODE",
                              "FRAGIDX", "MIN", "LOW", "HIGH", "FREE", "LAT(ms)", "STATUS"]
    rows = [line.split() for line in lines]
    assert [r[1:8] for r in rows] == [["sh", str(pid), str(node), zone, "-1", "SYNC", "-"]
                                      for node, zone in populated()]
    for line, r in zip(lines, rows):
        assert r[-1] in DONE and line.endswith("%16s" % r[-1])
        assert float(r[0]) >= 0 and len(r[0].split(".")[1]) == 9
        assert len(r[-2].split(".")[1]) == 3 and float(r[-2]) >= 0
        assert all(x.isdigit() for x in r[8:12])
        # BCC's widths: COMM 14, PID 6, NODE 4, ZONE 12, ORDER 5, MODE 7
        assert line[15:].startswith("%-14s %-6s %-4s %-12s %-5s %-7s "
                                    % ("sh", pid, r[3], r[4], "-1", "SYNC"))


FRAME = re.compile(r"[\w.$]+\+0x[0-9a-f]+")      # "name+0xoff", as BCC's ksym() shows it


@or_refused
def test_kernel_stack_of_each_run():
    t, pid = compact("-K")
    evs = t.events
    assert [(e["pid"], e["node"], e["zone"]) for e in evs] == [(pid, n, z) for n, z in populated()]
    for e in evs:
        frames = e["stack"]
        assert all(FRAME.fullmatch(f) for f in frames), frames
        # innermost the run itself (the BPF program and the tracepoint's
        # runner are left out), outermost the write to compact_memory
        assert "compact_zone+" in frames[0], frames
        assert any(f.startswith("sysctl_compaction_handler+") for f in frames), frames
    assert "kernel stacks are shown as addresses" not in t.stderr


@or_refused
def test_kernel_stack_text_as_bcc_prints_it():
    t, pid = compact("-K", json_mode=False)
    header, *blocks = t.stdout.split("\n\n")
    assert header.splitlines()[0].split()[-2:] == ["LAT(ms)", "STATUS"]
    # the header and the first run are one block: BCC prints no empty line there
    blocks = ["\n".join(header.splitlines()[1:])] + blocks
    assert blocks[-1] == ""                     # each run's frames end with an empty line
    runs = [b.split("\n\t") for b in blocks[:-1]]
    assert [r[0].split()[:4] for r in runs] == [["sh", str(pid), str(n), z] for n, z in populated()]
    for r in runs:
        assert len(r) > 2 and all(FRAME.fullmatch(f) for f in r[1:]), r
        assert "compact_zone+" in r[1]


@pytest.mark.parametrize("bad", [["-m", "x"], ["--min-ms", "-1"], ["-p", "x"]])
def test_bad_arguments_exit_2(bad):
    r = run_tool("compactsnoop", *bad)
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr
