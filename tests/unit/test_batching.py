"""The poll loop batches without delaying: it sleeps at most POLL_SECONDS,
drains everything the buffer holds, writes each batch in one write before it
waits again, and reports lost events as they grow, exactly once each. Ctrl-C
ends it between drains, never inside one."""
import argparse
import io
import os
import signal
import sys
import tempfile

from snooptools import Column, Tool
from snooptools import output, sink
from snooptools.btf import Layout
from snooptools import loop
from snooptools.loop import POLL_SECONDS


class Out:
    """stdout as a file, and the writes made to it."""

    def __init__(self):
        self.file = tempfile.TemporaryFile()
        self.writes = 0

    def sink(self, encoding):
        out = sink.Sink(self.file.fileno(), encoding or "utf-8")
        write = out.write

        def counted(*args):
            self.writes += 1
            write(*args)
        out.write = counted
        return out

    def size(self):
        return os.fstat(self.file.fileno()).st_size

    def getvalue(self):
        self.file.seek(0)
        return self.file.read().decode()


def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


class Buffer:
    """Batches of (pid, lost so far) given out one per wait(), then Ctrl-C.
    A pid of None in a batch is a Ctrl-C in the middle of its drain."""

    def __init__(self, batches, out):
        self.batches, self.timeouts, self.lost_now = list(batches), [], 0
        self.out, self.written = out, []
        self.stopped = False
        self.drains = 0

    def wait(self, timeout):
        self.timeouts.append(timeout)
        self.written.append(self.out.size())
        if not self.batches and not self.stopped:
            self.stopped = True
            ctrl_c()

    def drain(self, handle):
        self.drains += 1
        if not self.batches:
            return 0
        pids, self.lost_now = self.batches.pop(0)
        for pid in pids:
            if pid is None:
                ctrl_c()
            else:
                data = EVENT.struct.pack(0, pid, pid, 0, b"x")
                handle(data, 0, len(data))
        return len(pids)

    def lost(self):
        return self.lost_now


EVENT = Layout(["ts_ns", "pid", "tid", "uid", "comm"], "=QIII16s", {}, 36)   # struct task_head


class Obj:
    @staticmethod
    def layout(name):
        return EVENT


class Probe(Tool):
    name = "probe"

    def columns(self, args):
        return [Column("PID", "pid", 5)]

    def open_stdout(self, encoding=None):
        self.stdout = self.fake.sink(encoding)
        return self.stdout


def poll(batches, json_mode=False, monkeypatch=None):
    out, err = Out(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr("snooptools.loop.LOST_CHECK_SECONDS", 0)   # check every round
    tool = Probe()
    tool.fake = out
    tool.child = None
    tool.clock = output.Clock()
    args = argparse.Namespace(json=json_mode, time=False, timestamp=False, summary=False,
                              duration=None, quiet=True)
    buf = Buffer(batches, out)
    assert loop.trace(tool, Obj, buf, args) == 0
    return out, err, buf


def test_each_batch_is_one_write_made_before_the_next_wait(monkeypatch):
    out, err, buf = poll([(range(1, 1001), 0), ([], 0), (range(1001, 1003), 0)],
                         monkeypatch=monkeypatch)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["PID"] and [int(x) for x in lines[1:]] == list(range(1, 1003))
    # the header, then one write per non-empty batch, however many events
    assert out.writes == 3
    # the header is out before the first wait, each batch before the next
    header, batch = len("  PID\n"), len("    1\n")
    assert buf.written[:4] == [header, header + 1000 * batch, header + 1000 * batch,
                               header + 1002 * batch]
    assert all(0 < t <= POLL_SECONDS for t in buf.timeouts[:-1])
    assert err.getvalue() == ""


def test_lost_events_reported_as_they_grow_once_each(monkeypatch):
    out, err, _ = poll([([1], 0), ([2], 5), ([3], 5), ([4], 12)], monkeypatch=monkeypatch)
    assert err.getvalue() == "5 events lost\n7 events lost\n"


def test_json_batches_too(monkeypatch):
    out, err, _ = poll([(range(1, 501), 0)], json_mode=True, monkeypatch=monkeypatch)
    assert out.writes == 1 and out.getvalue().count("\n") == 500


def test_ctrl_c_mid_drain_ends_after_it_each_event_once(monkeypatch):
    # what SIGINT did before (Python's KeyboardInterrupt, or nothing where
    # pytest was started in the background by a shell, as SIG_IGN)
    before = signal.getsignal(signal.SIGINT)
    out, err, buf = poll([([1, 2, None, 3, 4], 0), ([5], 0), ([6], 0)], monkeypatch=monkeypatch)
    # the drain under way finishes, then only the final drain runs; had
    # Ctrl-C broken into the drain, the ring's records from the start of it
    # would have been read again, and written twice
    assert [int(x) for x in out.getvalue().splitlines()[1:]] == [1, 2, 3, 4, 5]
    assert buf.drains == 2 and buf.batches == [([6], 0)]
    assert signal.getsignal(signal.SIGINT) is before        # given back
