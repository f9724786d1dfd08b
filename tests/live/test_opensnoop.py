"""opensnoop, live: a held child opens known files; exact fields."""
import errno
import os
import platform

import pytest

from helpers import PYTHON, PYTHON_COMM, Tracer, held_child, release, run_tool
from snooptools import kernel

OPENER = PYTHON + """ -c '
import os, sys
for p in sys.argv[1:]:
    try:
        os.close(os.open(p, os.O_RDONLY))
    except OSError:
        pass
' """


def opens(t, pid, suffix):
    return [e for e in t.events if e["pid"] == pid and e["path"].endswith(suffix)]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "present").write_text("x")
    return tmp_path


def refused(variant, starts="hash"):
    """What opensnoop says where this kernel lacks what a test forces on it
    (before 5.11: task-local storage for tracing programs; before 5.15: a
    task's saved registers), else None."""
    task_btf = kernel.tracing_helper(kernel.BPF_FUNC_GET_CURRENT_TASK_BTF)
    if starts == "task" and not (task_btf and
                                 kernel.tracing_helper(kernel.BPF_FUNC_TASK_STORAGE_GET)):
        return ("opensnoop: no task-local storage for tracing programs on this kernel: "
                "SNOOPTOOLS_STARTS=task asked for it\n")
    if variant == "exit" and platform.machine() != "x86_64":
        return ("opensnoop: cannot trace on this kernel: exit: the exit tells the calls apart "
                "by x86-64's numbers\n")
    if variant == "exit" and not (task_btf and kernel.tracing_helper(kernel.BPF_FUNC_TASK_PT_REGS)):
        return ("opensnoop: cannot trace on this kernel: exit: tracing programs may not read "
                "a task's registers\n")
    return None


def assert_refused(line, env):
    r = run_tool("opensnoop", "-p", "1", env=dict(os.environ, **env))
    assert (r.returncode, r.stdout, r.stderr) == (1, "", line)


# The exit program alone (reading the call's registers), or entry and exit;
# with the pair, where entries keep what exits report: task-local storage,
# or the hash of kernels without it for tracing programs (every enter/exit
# tool shares this). What a kernel lacks, opensnoop says in one line.
@pytest.mark.parametrize("variant,buffer,starts", [
    ("exit", "ring", "task"), ("exit", "perf", "task"),
    ("pair", "ring", "task"), ("pair", "perf", "task"), ("pair", "ring", "hash")])
def test_existing_and_missing_file(files, variant, buffer, starts):
    env = {"SNOOPTOOLS_VARIANT": variant, "SNOOPTOOLS_BUFFER": buffer, "SNOOPTOOLS_STARTS": starts}
    line = refused(variant, starts)
    if line:
        return assert_refused(line, env)
    child = held_child(OPENER + "%s/present %s/missing" % (files, files))
    with Tracer("opensnoop", "-p", str(child.pid), env=env) as t:
        release(child)
    [ok] = opens(t, child.pid, "/present")
    [bad] = opens(t, child.pid, "/missing")
    assert ok["path"] == "%s/present" % files and ok["fd"] >= 3 and ok["err"] == 0
    assert bad["path"] == "%s/missing" % files and (bad["fd"], bad["err"]) == (-1, errno.ENOENT)
    assert ok["comm"] == bad["comm"] == PYTHON_COMM
    assert ok["tid"] == ok["pid"] == child.pid and ok["uid"] == os.getuid()
    assert ok["flags"] & 0o3 == os.O_RDONLY and ok["call"] == "openat"


# open() and openat2() made directly (libc's open() is openat()): the exit
# alone tells the calls apart, and finds openat2's flags and mode in its
# struct open_how
OTHER_CALLS = PYTHON + """ -c '
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
how = struct.pack("QQQ", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, 0)
for fd in (libc.syscall(2, sys.argv[1].encode(), os.O_RDONLY | os.O_NOFOLLOW, 0),
           libc.syscall(437, -100, sys.argv[2].encode(), how, len(how)),
           libc.syscall(437, -100, sys.argv[2].encode(), how, len(how))):
    fd >= 0 and os.close(fd)
' """


@pytest.mark.parametrize("variant", ["exit", "pair"])
def test_open_and_openat2_calls(files, variant):
    line = refused(variant)
    if line:
        return assert_refused(line, {"SNOOPTOOLS_VARIANT": variant})
    child = held_child(OTHER_CALLS + "%s/present %s/made" % (files, files))
    with Tracer("opensnoop", "-p", str(child.pid), env={"SNOOPTOOLS_VARIANT": variant}) as t:
        release(child)
    [opened] = opens(t, child.pid, "/present")
    made, exists = opens(t, child.pid, "/made")
    assert (opened["call"], opened["flags"], opened["err"]) == ("open", os.O_NOFOLLOW, 0)
    assert opened["path"] == "%s/present" % files and opened["fd"] >= 3
    excl = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    assert (made["call"], made["flags"], made["mode"], made["err"]) == ("openat2", excl, 0o600, 0)
    assert (exists["call"], exists["flags"], exists["fd"], exists["err"]) == \
        ("openat2", excl, -1, errno.EEXIST)
    assert (files / "made").stat().st_mode & 0o777 == 0o600


def test_flags_and_mode(files):
    child = held_child(PYTHON + """ -c 'import os; os.close(os.open("%s/new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640))'""" % files)
    with Tracer("opensnoop", "-p", str(child.pid), "-f", "O_CREAT") as t:
        release(child)
    [e] = opens(t, child.pid, "/new")
    assert e["flags"] & (os.O_WRONLY | os.O_CREAT | os.O_TRUNC) == os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    assert e["mode"] == 0o640
    # -f excludes opens without the flag: the read-only opens of python's start-up
    assert all(ev["flags"] & os.O_CREAT for ev in t.events)


def test_failed_only(files):
    child = held_child(OPENER + "%s/present %s/missing" % (files, files))
    with Tracer("opensnoop", "-x", "-p", str(child.pid)) as t:
        release(child)
    assert opens(t, child.pid, "/present") == []
    assert len(opens(t, child.pid, "/missing")) == 1
    assert all(e["err"] != 0 for e in t.events)


def test_full_path_from_chdir_child_and_dirfd(files):
    (files / "sub").mkdir()
    (files / "sub" / "f").write_text("x")
    script = ("import os; os.chdir(%r); os.close(os.open('sub/f', os.O_RDONLY)); "
              "d = os.open('sub', os.O_RDONLY)\n"
              "try: os.open('nope', os.O_RDONLY, dir_fd=d)\nexcept OSError: pass\n"
              "os.close(os.open('f', os.O_RDONLY, dir_fd=d))") % str(files)
    child = held_child("%s -c %s" % (PYTHON, _sh_quote(script)))
    with Tracer("opensnoop", "-F", "-p", str(child.pid)) as t:
        release(child)
    sub = "%s/sub" % files
    paths = [(e["path_as_passed"], e["path"], e["err"]) for e in t.events
             if e["path"].startswith(str(files))]
    assert ("sub/f", sub + "/f", 0) in paths
    assert ("nope", sub + "/nope", errno.ENOENT) in paths      # failed, relative to dirfd
    assert ("f", sub + "/f", 0) in paths                       # dirfd-relative success


@pytest.fixture
def mounted(files):
    """files/mnt: a tmpfs, holding a/b/f."""
    import subprocess
    mnt = files / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "snoop", str(mnt)], check=True)
    try:
        (mnt / "a" / "b").mkdir(parents=True)
        (mnt / "a" / "b" / "f").write_text("x")
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_full_path_crosses_mounts_and_marks_a_walk_cut_short(files, mounted):
    """The dentry walk climbs from the tmpfs's root into the mount it sits
    on; a path deeper than the walk goes (32 components) keeps its last
    components and says it was cut."""
    deep = mounted.joinpath(*["d%d" % i for i in range(40)])
    deep.mkdir(parents=True)
    (deep / "f").write_text("x")
    script = ("import os; os.chdir(%r); os.close(os.open('b/f', os.O_RDONLY)); "
              "os.chdir(%r); os.close(os.open('f', os.O_RDONLY))") % (str(mounted / "a"),
                                                                      str(deep))
    child = held_child("%s -c %s" % (PYTHON, _sh_quote(script)))
    with Tracer("opensnoop", "-F", "-p", str(child.pid)) as t:
        release(child)
    got = {e["path_as_passed"]: (e["path"], e["path_truncated"]) for e in t.events
           if e.get("path_as_passed") in ("b/f", "f")}
    assert got["b/f"] == (str(mounted / "a/b/f"), False)
    assert got["f"] == ("/" + "/".join(["d%d" % i for i in range(40 - 31, 40)] + ["f"]), True)


def test_path_prefix_filter_in_kernel(files):
    child = held_child(OPENER + "%s/present /etc/hostname" % files)
    with Tracer("opensnoop", "-p", str(child.pid), "--path", str(files)) as t:
        release(child)
    assert [e["path"] for e in t.events] == ["%s/present" % files]


def test_exec_runs_and_traces_only_the_command(files):
    # head -c 0 prints nothing, so stdout holds only the tracer's JSON
    with Tracer("opensnoop", "--exec", "head", "-c", "0", "%s/present" % files) as t:
        t.proc.wait(timeout=60)     # ends by itself when head does (no SIGINT before)
    pids = {e["pid"] for e in t.events}
    assert len(pids) == 1 and pids != {os.getpid()}
    assert ["%s/present" % files] == [e["path"] for e in t.events if e["path"].endswith("present")]
    assert t.returncode == 0


def test_text_columns(files):
    child = held_child(OPENER + "%s/present" % files)
    with Tracer("opensnoop", "-U", "-e", "-p", str(child.pid), "--path", str(files),
                json_mode=False) as t:
        release(child)
    header, line = t.stdout.splitlines()
    assert header.split() == ["UID", "PID", "COMM", "FD", "ERR", "FLAGS", "MODE", "PATH"]
    uid, pid, comm, fd, err, flags, mode, path = line.split()
    assert (uid, pid, comm, err, mode, path) == (
        str(os.getuid()), str(child.pid), PYTHON_COMM, "0", "n/a", "%s/present" % files)
    assert int(flags, 8) & os.O_CLOEXEC and int(fd) >= 3


def _sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"
