"""--tree's start in user space: the processes below a pid, as /proc
tells them, and the report of processes the kernel's map had no room for."""
import os
import signal
import subprocess

from snooptools import loop, tree
from snooptools.output import Summary


def test_descendants_of_a_process_are_found_below_it():
    sh = subprocess.Popen(["/bin/sh", "-c", "sleep 30 & a=$!; (sleep 30 & echo $a $!; wait)"],
                          stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        a, b = map(int, sh.stdout.readline().split())
        found = tree.descendants(sh.pid)
        # sh, its sleep, its subshell and the subshell's sleep
        assert len(found) == 4 and {sh.pid, a, b} < set(found)
        assert all(found[pid][1] in found for pid in found if pid != sh.pid)
        assert found[sh.pid][1] == os.getpid()
        # the caller (a tool started from the tree) is not followed
        assert os.getpid() not in tree.descendants(os.getppid())
    finally:
        os.killpg(sh.pid, signal.SIGKILL)
        sh.wait()


def test_stat_reads_past_any_comm_and_tells_a_zombie(tmp_path):
    odd = tmp_path / "a) b (c"          # its comm: "a) b (c"
    odd.symlink_to("/bin/true")
    child = subprocess.Popen([str(odd)])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)     # exited, not reaped
    try:
        state, ppid, _, threads = tree._stat(child.pid)
        assert (state, ppid, threads) == (b"Z", os.getpid(), 1)
        assert tree._dead(tree._stat(child.pid))
        assert not tree._dead(tree._stat(os.getpid()))
    finally:
        child.wait()
    assert tree._stat(child.pid) is None


def test_processes_left_out_are_said_once_and_counted_in_the_summary(capsys, monkeypatch):
    monkeypatch.delenv(tree.MAX_ENV, raising=False)
    count = [0]
    assert loop.report_misses(lambda: count[0], 0) == 0
    count[0] = 2
    said = loop.report_misses(lambda: count[0], 0)
    count[0] = 5
    assert loop.report_misses(lambda: count[0], said) == said
    assert loop.report_misses(lambda: None, 0) is None      # no tree followed
    assert capsys.readouterr().err == (
        "2 processes of the tree not followed: its map is full (32768 processes; "
        "SNOOPTOOLS_TREE_MAX=N sets the size)\n")
    s = Summary()
    assert s.render(0, not_followed=5).startswith(
        "0 events, 0 lost; 5 processes of the tree not followed\n")
    assert s.render(0).startswith("0 events, 0 lost\n")
