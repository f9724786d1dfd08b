"""execsnoop, live: real exec()s by a held child, asserted field by field."""
import errno
import os

from helpers import Tracer, held_child, release


def exec_events(t, pid):
    return [e for e in t.events if e["pid"] == pid]


def test_successful_exec_exact_fields():
    child = held_child("/bin/echo alpha 'two words' gamma")
    with Tracer("execsnoop", "--pid", str(child.pid)) as t:
        rc, out, _ = release(child)
    assert rc == 0 and out == "alpha two words gamma\n"
    [e] = exec_events(t, child.pid)
    assert e["args"] == ["/bin/echo", "alpha", "two words", "gamma"]
    assert e["filename"] == "/bin/echo"
    assert (e["ret"], e["err"], e["args_truncated"]) == (0, 0, False)
    assert e["comm"] == "echo"
    assert e["ppid"] == os.getpid() and e["tid"] == child.pid
    assert e["uid"] == os.getuid()
    assert t.returncode == 0


def test_failed_exec_needs_x_and_shows_error():
    child = held_child("/nonexistent/prog arg1")
    with Tracer("execsnoop", "-x", "--pid", str(child.pid)) as t:
        release(child)
    [e] = exec_events(t, child.pid)
    assert e["ret"] == -errno.ENOENT and e["err"] == errno.ENOENT
    assert e["args"] == ["/nonexistent/prog", "arg1"]
    assert e["comm"] == "sh"            # the exec failed: still the shell

    child = held_child("/nonexistent/prog arg1")
    with Tracer("execsnoop", "--pid", str(child.pid)) as t:
        release(child)
    assert exec_events(t, child.pid) == []


def test_long_argument_list_in_full_and_max_args():
    words = ["arg%03d-%s" % (i, "x" * 50) for i in range(150)]
    child = held_child("/bin/true " + " ".join(words))
    with Tracer("execsnoop", "--max-args", "1000", "--pid", str(child.pid)) as t:
        release(child)
    [e] = exec_events(t, child.pid)
    assert e["args"] == ["/bin/true"] + words
    assert e["args_truncated"] is False

    child = held_child("/bin/true " + " ".join(words))
    with Tracer("execsnoop", "--pid", str(child.pid)) as t:       # default: 20
        release(child)
    [e] = exec_events(t, child.pid)
    assert e["args"] == ["/bin/true"] + words[:19]
    assert e["args_truncated"] is True


def test_text_mode_columns_and_truncation_marker():
    child = held_child("/bin/true a b c d")
    with Tracer("execsnoop", "--max-args", "3", "-U", "-M", "--pid", str(child.pid),
                json_mode=False) as t:
        release(child)
    header, line = t.stdout.splitlines()
    assert header.split() == ["UID", "COMM", "PID", "PCOMM", "PPID", "RET", "ARGS"]
    assert line.split() == [str(os.getuid()), "true", str(child.pid), open("/proc/self/comm").read().strip(), str(os.getpid()), "0",
                            "/bin/true", "a", "b", "..."]


def test_ppid_filter_in_kernel_both_ways():
    child = held_child("/bin/true ppid-test")
    with Tracer("execsnoop", "-P", str(os.getpid())) as t:
        release(child)
    assert [e["args"] for e in exec_events(t, child.pid)] == [["/bin/true", "ppid-test"]]

    child = held_child("/bin/true ppid-test")
    with Tracer("execsnoop", "-P", "1") as t:
        release(child)
    assert exec_events(t, child.pid) == []


def test_name_and_line_regex_filters():
    child = held_child("/bin/echo needle")
    with Tracer("execsnoop", "--pid", str(child.pid), "-l", "need.e") as t:
        release(child)
    assert len(exec_events(t, child.pid)) == 1
    child = held_child("/bin/echo needle")
    with Tracer("execsnoop", "--pid", str(child.pid), "-n", "^nomatch") as t:
        release(child)
    assert exec_events(t, child.pid) == []
