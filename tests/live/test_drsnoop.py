"""drsnoop, live: a held child in a memory cgroup limited to 64 MiB writes
200 MiB through the page cache, so it reclaims its cgroup's memory itself
(memcg limit reclaim); its reclaims are asserted field by field. Global
direct reclaim needs the whole machine short of memory, which a test must
not cause; it shares the end program and the record with memcg reclaim."""
import contextlib
import os
import tempfile

import pytest

from helpers import Tracer, held_child, release, run_tool

LIMIT, WRITE_MIB = 64 << 20, 200


def memory_cgroup_parent():
    """(directory, limit file) of a memory cgroup hierarchy: cgroup v1's
    memory controller, else cgroup v2 with the memory controller."""
    with open("/proc/self/mounts") as f:
        mounts = [line.split() for line in f]
    for _, mnt, fstype, opts, *_ in mounts:
        if fstype == "cgroup" and "memory" in opts.split(","):
            return mnt, "memory.limit_in_bytes"
    for _, mnt, fstype, *_ in mounts:
        if fstype == "cgroup2":
            with open(os.path.join(mnt, "cgroup.subtree_control")) as f:
                if "memory" in f.read().split():
                    return mnt, "memory.max"
    pytest.fail("no memory cgroup controller mounted")


@contextlib.contextmanager
def cgroup_writer():
    """A held child (dd) in a new memory cgroup limited to 64 MiB, which once
    released writes 200 MiB to a file on a disk filesystem. The file and the
    cgroup are removed however the test ends."""
    parent, limit_file = memory_cgroup_parent()
    cg = tempfile.mkdtemp(prefix="drsnoop-test-", dir=parent)
    child = path = None
    try:
        fd, path = tempfile.mkstemp(prefix="drsnoop-test-", dir="/var/tmp")
        os.close(fd)
        with open(os.path.join(cg, limit_file), "w") as f:
            f.write(str(LIMIT))
        child = held_child("dd if=/dev/zero of=%s bs=1M count=%d" % (path, WRITE_MIB))
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write(str(child.pid))
        yield child
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.communicate()
        if path:
            os.unlink(path)
        os.rmdir(cg)                    # empty: its one task has been reaped


def trace_writer(*arg_sets, json_mode=True):
    """Run the writer once under one tracer per argument list ({pid}: the
    writer's); return (tracers, child pid)."""
    with cgroup_writer() as child, contextlib.ExitStack() as stack:
        tracers = []
        for args in arg_sets:
            args = [a.replace("{pid}", str(child.pid)) for a in args]
            tracers.append(stack.enter_context(Tracer("drsnoop", *args, json_mode=json_mode)))
        rc, _, err = release(child, timeout=60)
        assert rc == 0, err
    for t in tracers:
        assert t.returncode == 0, t.stderr
    return tracers, child.pid


def test_memcg_reclaim_exact_fields_and_only_with_memcg():
    (t, plain), pid = trace_writer(["--memcg", "--pid", "{pid}"], ["--pid", "{pid}"])
    evs = t.events
    assert evs, t.stderr
    for e in evs:
        # the allocation's flags vary (page cache, and on some kernels
        # filesystem metadata with __GFP_NOFAIL) but are never none
        assert e["gfp_flags"] > 0
        assert {k: v for k, v in e.items() if k not in ("ts", "lat_ms", "pages", "gfp_flags", "cgroup_id")} \
            == {"pid": pid, "tid": pid, "uid": os.getuid(), "comm": "dd", "reclaim": "memcg",
                "order": 0}
        assert isinstance(e["lat_ms"], float) and 0 <= e["lat_ms"] < 60000
        assert isinstance(e["pages"], int) and e["pages"] >= 0
    # dd's cgroup stays under its limit: what it wrote beyond it, dd reclaimed
    assert any(e["pages"] > 0 for e in evs)
    reclaimed = sum(e["pages"] for e in evs) * os.sysconf("SC_PAGE_SIZE")
    assert reclaimed >= (WRITE_MIB << 20) - LIMIT
    assert [e["ts"] for e in evs] == sorted(e["ts"] for e in evs)
    assert plain.events == []           # memcg reclaim is not direct reclaim


def test_filters_both_ways():
    include = [["-p", "{pid}"], ["-t", "{pid}"], ["-u", "0"], ["-n", "d"],
               ["--min-ms", "0.000001"]]
    exclude = [["-p", "1"], ["-t", "1"], ["-u", "65534"], ["-n", "nomatch"],
               ["--min-ms", "60000", "-p", "{pid}"]]
    tracers, pid = trace_writer(*(["--memcg"] + a for a in include + exclude))
    for args, t in zip(include + exclude, tracers):
        mine = [e for e in t.events if e["pid"] == pid]
        assert bool(mine) == (args in include), (args, len(mine))
        assert all(e["comm"] == "dd" and e["reclaim"] == "memcg" for e in mine)


def test_text_columns_with_uid_tid_and_free_memory():
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    (t,), pid = trace_writer(["--memcg", "-T", "-U", "-e", "-t", "{pid}"], json_mode=False)
    header, *lines = t.stdout.splitlines()
    # BCC's: TIME(s) %-14s, UID %-6s and FREE(KB) %10s with no space
    # between them and their neighbours; then --memcg's column
    assert header == "%-14s%-6s%-14s %-6s %8s %5s%10s %s" % (
        "TIME(s)", "UID", "COMM", "TID", "LAT(ms)", "PAGES", "FREE(KB)", "RECLAIM")
    assert lines
    for line in lines:
        ts, uid, comm, tid, lat, pages, free, kind = line.split()
        assert (uid, comm, tid, kind) == (str(os.getuid()), "dd", str(pid), "memcg")
        assert len(ts.split(".")[1]) == 9 and len(lat.split(".")[1]) == 2
        assert int(pages) >= 0 and int(free) > 0 and int(free) % page_kb == 0
        # BCC's widths: UID 6, COMM 14, TID 6, LAT(ms) 8, PAGES 5, FREE(KB) 10
        assert line[14:].startswith("%-6s%-14s %-6s %8s %5s%10s " % (uid, comm, tid, lat,
                                                                        pages, free))


def test_free_memory_from_vmstat():
    (t,), pid = trace_writer(["--memcg", "-v", "-p", "{pid}"])
    with open("/proc/zoneinfo") as f:
        managed = sum(int(line.split()[1]) for line in f if line.split()[:1] == ["managed"])
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    assert t.events
    for e in t.events:
        assert 0 < e["free_kb"] <= managed * page_kb and e["free_kb"] % page_kb == 0


@pytest.mark.parametrize("bad", [["-m", "x"], ["--min-ms", "-1"], ["-t", "x"],
                                 ["-u", "nosuchuser"]])
def test_bad_arguments_exit_2(bad):
    r = run_tool("drsnoop", *bad)
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr
