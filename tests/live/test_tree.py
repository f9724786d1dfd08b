"""--tree and --exec, live: a process tree followed in the kernel, from
processes it had before tracing to those it makes after, and nothing
outside it; the map of followed processes freed at exit, and reported
when full."""
import os
import subprocess

import pytest

from helpers import PYTHON, Tracer, held_child, release, run_tool

# The root of the tree: a child it has before tracing, waiting on a fifo;
# then, once told, a child that makes a grandchild. Each says its pid.
ROOT_SCRIPT = """\
( read _ < {fifo}; exec /bin/true seeded ) &
echo $!
read _
/bin/sh -c '{child}'
wait
"""
CHILD = 'echo $$; /bin/sh -c "echo \\$\\$; exec /bin/true grandchild"; true'
GRANDCHILD = "echo $$; exec /bin/true grandchild"


def test_tree_follows_the_children_it_had_and_makes_and_nothing_else(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    script = tmp_path / "root.sh"
    script.write_text(ROOT_SCRIPT.format(fifo=fifo, child=CHILD))
    root = subprocess.Popen(["/bin/sh", str(script)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    seeded = int(root.stdout.readline())        # there before tracing: found in /proc
    sibling = held_child("/bin/true sibling")   # beside the root, not in its tree
    with Tracer("execsnoop", "--tree", str(root.pid)) as t:
        with open(fifo, "w") as f:
            f.write("go\n")
        assert release(sibling)[0] == 0
        out, _ = root.communicate("go\n", timeout=10)
    assert root.returncode == 0
    child, grandchild = map(int, out.split())
    assert sorted((e["pid"], e["ppid"], e["args"]) for e in t.events) == sorted([
        (seeded, root.pid, ["/bin/true", "seeded"]),
        (child, root.pid, ["/bin/sh", "-c", CHILD]),
        (grandchild, child, ["/bin/sh", "-c", GRANDCHILD]),
        (grandchild, child, ["/bin/true", "grandchild"]),
    ])
    assert t.returncode == 0


def test_exec_traces_the_whole_tree_of_its_command_and_ends_with_it():
    script = '/bin/sh -c "/bin/true deep; true"; /bin/true top; exit 3'
    with Tracer("execsnoop", "--exec", "/bin/sh", "-c", script) as t:
        t.proc.wait(timeout=30)         # ends by itself, when the command does
    cmd, child, grandchild, other = t.events
    assert (cmd["ppid"], cmd["args"]) == (t.proc.pid, ["/bin/sh", "-c", script])
    assert (child["ppid"], child["args"]) == (cmd["pid"], ["/bin/sh", "-c", "/bin/true deep; true"])
    assert (grandchild["ppid"], grandchild["args"]) == (child["pid"], ["/bin/true", "deep"])
    assert (other["ppid"], other["args"]) == (cmd["pid"], ["/bin/true", "top"])
    assert len({cmd["pid"], child["pid"], grandchild["pid"], other["pid"]}) == 4
    # the command's status is said, not the tool's
    assert t.returncode == 0
    assert t.stderr_lines[-1] == "/bin/sh exited with status 3\n"


# A thread of the command opens a file and makes a child that opens another.
THREADED = """\
import os, subprocess, sys, threading
def work():
    open(sys.argv[1]).close()
    child = subprocess.Popen(["/bin/cat", sys.argv[2]])
    child.wait()
    print(os.getpid(), threading.get_native_id(), child.pid, file=sys.stderr)
t = threading.Thread(target=work)
t.start()
t.join()
"""


def test_threads_are_followed_with_their_process_and_so_are_their_children(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("")
    b.write_text("")
    with Tracer("opensnoop", "--path", str(tmp_path),
                "--exec", PYTHON, "-c", THREADED, str(a), str(b)) as t:
        t.proc.wait(timeout=30)
    pid, thread, child = map(int, t.stderr_lines[-2].split())
    by_thread, by_child = t.events
    assert thread != pid        # a thread of the command's, not its first
    assert (by_thread["pid"], by_thread["tid"], by_thread["path"]) == (pid, thread, str(a))
    assert (by_child["pid"], by_child["tid"], by_child["path"]) == (child, child, str(b))


def test_exited_processes_leave_the_map_and_a_full_map_is_reported():
    # room for 2: the command and one child at a time, as long as each
    # child's exit takes it out; the grandchild of the last finds it full
    script = '/bin/true a; /bin/true b; /bin/true c; /bin/sh -c "/bin/true d; exit 4"; exit 5'
    with Tracer("exitsnoop", "--summary", "--exec", "/bin/sh", "-c", script,
                env={"SNOOPTOOLS_TREE_MAX": "2"}) as t:
        t.proc.wait(timeout=30)
    *trues, inner, cmd = t.events
    assert [(e["comm"], e["exit_code"]) for e in trues] == [("true", 0)] * 3
    assert {e["ppid"] for e in trues} == {cmd["pid"]}
    assert (inner["comm"], inner["ppid"], inner["exit_code"]) == ("sh", cmd["pid"], 4)
    # the command's own exit: tree_exit runs after exitsnoop's program
    assert (cmd["comm"], cmd["ppid"], cmd["exit_code"]) == ("sh", t.proc.pid, 5)
    full = [line for line in t.stderr_lines if "not followed" in line]
    assert full == [
        "1 processes of the tree not followed: its map is full (2 processes; "
        "SNOOPTOOLS_TREE_MAX=N sets the size)\n",
        "5 events, 0 lost; 1 processes of the tree not followed\n"]
    assert t.returncode == 0


@pytest.mark.parametrize("args,message", [
    (["--tree", "abc"], "argument --tree: invalid pid 'abc': expected a process id"),
    (["--tree", "4194303"], "argument --tree: pid 4194303: no such process"),
    (["--tree", "1", "--pid", "1", "--exec", "true"], "--exec and --pid cannot be used together"),
    (["--tree", "1", "--exec", "true"], "--exec and --tree cannot be used together"),
])
def test_bad_tree_arguments_exit_2(args, message):
    r = run_tool("opensnoop", *args)
    assert r.returncode == 2
    assert r.stderr.startswith("usage: opensnoop")
    assert r.stderr.splitlines()[-1] == "opensnoop: error: " + message
