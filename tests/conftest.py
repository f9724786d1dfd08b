"""Test tiers: tests/unit runs anywhere; tests/live needs root and BTF.

On a machine that can run live tests, a skipped live test is a failure:
the live tier is the heart of the suite and must not pass by not running.

Each test's call has a time limit: a test that hangs fails, with every
thread's stack printed, instead of holding the run until CI kills it. A test
that leaves a process of its own running fails too, and the process is
killed: a forgotten tracer or load generator slows every test after it.
"""
import faulthandler
import os
import signal
import sys
import time

import pytest

from helpers import can_run_live


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/live/" in str(item.fspath):
            item.add_marker(pytest.mark.live)


def pytest_runtest_setup(item):
    if item.get_closest_marker("live") and not can_run_live():
        pytest.skip("live tests need root and kernel BTF")


# seconds; the slowest test takes ~30 s in the TCG VM
TIME_LIMIT = int(os.environ.get("SNOOPTOOLS_TEST_TIME_LIMIT", "240"))


class TimeLimit(Exception):
    pass


def _over_time(signum, frame):
    faulthandler.dump_traceback(sys.stderr, all_threads=True)
    raise TimeLimit("test ran longer than %d s (stacks above)" % TIME_LIMIT)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    previous = signal.signal(signal.SIGALRM, _over_time)
    marker = item.get_closest_marker("time_limit")     # a test that runs others
    signal.alarm(max(TIME_LIMIT, marker.args[0]) if marker else TIME_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    # an expected failure (xfail) is reported as skipped, but it ran
    if rep.skipped and not hasattr(rep, "wasxfail") and item.get_closest_marker("live") \
            and can_run_live():
        rep.outcome = "failed"
        rep.longrepr = "live test skipped on a machine that can run it: %s" % (rep.longrepr,)


def _descendants(root):
    """{pid: command} of root's living (not zombie) descendants."""
    parent, cmd = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            parent[int(entry)] = int(fields[1])
            cmd[int(entry)] = argv.replace(b"\0", b" ").decode(errors="replace").strip()
    found, frontier = {}, {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in found}
        found.update((p, cmd[p]) for p in frontier)
    return found


@pytest.fixture(autouse=True)
def no_process_left_running():
    yield
    deadline = time.monotonic() + 3     # a process just signalled may still be exiting
    while (left := _descendants(os.getpid())) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if left:
        pytest.fail("the test left running: %s" % "; ".join(
            "%d %s" % kv for kv in sorted(left.items())), pytrace=False)


_file_seconds = {}


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    _file_seconds[path] = _file_seconds.get(path, 0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """Seconds per test file, slowest first: where a slow run's time goes
    (the VM legs under emulation above all)."""
    if not _file_seconds:
        return
    terminalreporter.section("seconds per file")
    for path, seconds in sorted(_file_seconds.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line("%8.1f  %s" % (seconds, path))
