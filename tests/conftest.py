"""Test tiers: tests/unit runs anywhere; tests/live needs root and BTF.

On a machine that can run live tests, a skipped live test is a failure:
the live tier is the heart of the suite and must not pass by not running.
"""
import pytest

from helpers import can_run_live


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/live/" in str(item.fspath):
            item.add_marker(pytest.mark.live)


def pytest_runtest_setup(item):
    if item.get_closest_marker("live") and not can_run_live():
        pytest.skip("live tests need root and kernel BTF")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and item.get_closest_marker("live") and can_run_live():
        rep.outcome = "failed"
        rep.longrepr = "live test skipped on a machine that can run it: %s" % (rep.longrepr,)
