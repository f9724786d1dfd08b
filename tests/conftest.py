"""Test tiers: tests/unit runs anywhere; tests/live needs root and BTF.

On a machine that can run live tests, a skipped live test is a failure:
the live tier is the heart of the suite and must not pass by not running.

Each test's call has a time limit: a test that hangs fails, with every
thread's stack printed, instead of holding the run until CI kills it.
"""
import faulthandler
import os
import signal
import sys

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
    signal.alarm(TIME_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and item.get_closest_marker("live") and can_run_live():
        rep.outcome = "failed"
        rep.longrepr = "live test skipped on a machine that can run it: %s" % (rep.longrepr,)
