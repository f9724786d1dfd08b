"""The common filters' knobs, as filters.apply() writes them, and what
their parser refuses."""
import argparse
import os
import subprocess
import threading

import pytest

from snooptools import filters
from snooptools.errors import SnoopError


class Knobs:
    """What apply() asks of a BPF object before load, kept."""

    def __init__(self):
        self.rodata, self.sizes, self.autoload, self.deferred = {}, {}, {}, set()

    def set_rodata(self, **kw):
        self.rodata.update(kw)

    def resize(self, name, entries):
        self.sizes[name] = entries

    def set_autoload(self, name, on):
        self.autoload[name] = on

    def defer_attach(self, *names):
        self.deferred.update(names)


def applied_to(argv):
    p = argparse.ArgumentParser()
    filters.add_arguments(p)
    filters.add_name(p)
    obj = Knobs()
    filters.apply(obj, p.parse_args(argv))
    return obj


def applied(argv):
    return applied_to(argv).rodata


def test_name_is_matched_in_the_kernel_as_bytes():
    assert applied([]) == {}
    assert applied(["-n", "caf\u00e9"]) == {"filter_name": "caf\u00e9".encode(), "filter_name_len": 5}
    # 16 bytes or more: in no comm (which holds 15); the kernel compares 16
    assert applied(["--name", "x" * 20]) == {"filter_name": b"x" * 16, "filter_name_len": 16}


def test_without_tree_nothing_of_it_is_loaded():
    obj = applied_to([])
    assert obj.rodata == {} and obj.autoload == {} and not obj.deferred
    assert obj.sizes == {"tree_tgids": 1}


def test_tree_loads_its_programs_and_attaches_them_last(monkeypatch):
    monkeypatch.delenv("SNOOPTOOLS_TREE_MAX", raising=False)
    obj = applied_to(["--tree", str(os.getpid()), "--pid", "7"])
    # both filters: the tree's processes among those pids
    assert obj.rodata == {"filter_tree": True, "filter_pid": 7}
    assert obj.autoload == {"tree_fork": True, "tree_exit": True}
    assert obj.deferred == {"tree_fork", "tree_exit"}
    assert obj.sizes == {"tree_tgids": 32768}
    monkeypatch.setenv("SNOOPTOOLS_TREE_MAX", "3")
    assert applied_to(["--tree", str(os.getpid())]).sizes == {"tree_tgids": 3}
    monkeypatch.setenv("SNOOPTOOLS_TREE_MAX", "0")
    with pytest.raises(SnoopError, match="SNOOPTOOLS_TREE_MAX=0"):
        applied_to(["--tree", str(os.getpid())])


def parse_error(argv):
    p = argparse.ArgumentParser()
    filters.add_arguments(p)
    errors = []

    def error(message):
        errors.append(message)
        raise SystemExit(2)
    p.error = error
    with pytest.raises(SystemExit):
        filters.check(p.parse_args(argv), error)
    return errors[0]


def test_tree_root_must_be_a_running_process():
    assert parse_error(["--tree", "abc"]) == "argument --tree: invalid pid 'abc': expected a process id"
    assert parse_error(["--tree", "0"]).endswith("invalid pid '0': expected a process id")
    with subprocess.Popen(["true"]) as gone:
        pass
    assert parse_error(["--tree", str(gone.pid)]) == \
        "argument --tree: pid %d: no such process" % gone.pid
    # a thread's id is refused: the tree is a process's
    started, stop, tids = threading.Event(), threading.Event(), []

    def thread():
        tids.append(threading.get_native_id())
        started.set()
        stop.wait()
    t = threading.Thread(target=thread)
    t.start()
    try:
        started.wait()
        assert parse_error(["--tree", str(tids[0])]) == \
            "argument --tree: pid %d: a thread of process %d; give the process" % (
                tids[0], os.getpid())
    finally:
        stop.set()
        t.join()


def test_exec_takes_a_command_and_neither_pid_nor_tree():
    assert parse_error(["--exec"]) == "--exec needs a command"
    assert parse_error(["--pid", "5", "--exec", "ls"]) == "--exec and --pid cannot be used together"
    assert parse_error(["--tree", str(os.getpid()), "--exec", "ls", "-l"]) == \
        "--exec and --tree cannot be used together"
