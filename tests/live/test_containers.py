"""Containers, live, with real podman containers: a command inside a named
container opens a file, execs, binds a port and exits with a code; its
events carry the container's id, name, runtime and the pid the container
sees (vpid); --container NAME shows them and nothing of a second container
or of the host; --containers shows the name in text.

The test session makes its own image from busybox-static's binary (podman
import of a tarball, no registry) in a store of its own under a temporary
directory (--root, --runroot, --tmpdir, the vfs driver: this works on a
read-only root too, as in the VM), and removes its containers, image and
store at the end. runc and cgroupfs: on a hybrid cgroup host crun refuses
to start containers; each container gets /libpod_parent/libpod-<id> in the
cgroup v2 hierarchy and pid and mount namespaces of its own.
"""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from helpers import TOOLS, Tracer, cgroup2_root, fentry_allowed, run_tool
from snooptools import kernel

BUSYBOX = "/bin/busybox"
IMAGE = "snooptools-busybox:test"
PORT = 4242
EXIT_CODE = 7
# One open of /etc/hostname, once let go (go()). The container then lives
# on for a second: a tool names a container from its runtime's state (runc's
# and conmon's, here, since this store is in a --root of the test's own),
# which goes when the container exits; one gone before the tool read its
# event would have no name (once, in the CI sequence's host leg).
OPEN_ONCE = "while [ ! -e /tmp/go ]; do sleep 0.05; done; cat /etc/hostname; sleep 1"
# what the container does once the test creates /tmp/go in it
SCRIPT = ("while [ ! -e /tmp/go ]; do sleep 0.05; done; "
          "cat /etc/hostname >/dev/null; /bin/true; "
          "nc -l -p %d & sleep 0.3; kill $!; exit %d" % (PORT, EXIT_CODE))


class Podman:
    def __init__(self, base, runtime_root=None, started=None):
        """runtime_root: where runc keeps its containers' state (default
        /run/runc, where the tools look first)."""
        self.base, self.runtime_root = base, runtime_root
        self.started = [] if started is None else started     # ids, for the clean-up
        self.argv = ["podman", "--root", base + "/root", "--runroot", base + "/run",
                     "--tmpdir", base + "/tmp", "--storage-driver", "vfs",
                     "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
        if runtime_root:
            self.argv += ["--runtime-flag", "root=" + runtime_root]

    def __call__(self, *args, check=True):
        r = subprocess.run(self.argv + list(args), capture_output=True, text=True, timeout=120)
        if check and r.returncode:
            raise AssertionError("podman %s: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout.strip()

    def start(self, name, script=SCRIPT):
        """A container running script; (its id, its init's host pid)."""
        cid = self("run", "-d", "--name", name, "--runtime", "runc", "--network", "none",
                   "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                   IMAGE, "sh", "-c", script)
        self.started.append(cid)
        pid = int(self("inspect", "-f", "{{.State.Pid}}", cid))
        return cid, pid

    def elsewhere(self):
        """The same store, runc's state under base/runc rather than /run/runc."""
        return Podman(self.base, self.base + "/runc", self.started)

    def wait(self, cid):
        return int(self("wait", cid))


@pytest.fixture(scope="module")
def podman():
    base = tempfile.mkdtemp(prefix="snooptools-podman-")
    # runc keeps its state in /run/runc, unless /run is read-only (a guest
    # on the host's root): then in base, and the tools find the containers'
    # names through conmon (test_name_found_through_conmon_...)
    p = Podman(base, None if os.access("/run", os.W_OK) else base + "/runc")
    # podman keeps a cache of image blobs in /var/lib/containers/cache, whatever
    # --root says (a memory-only one where it cannot: a read-only root)
    ours = [d for d in ("/var/lib/containers", "/var/lib/containers/cache")
            if not os.path.exists(d)]
    parents = libpod_dirs()         # podman's parent cgroup (cgroupfs), in each hierarchy
    try:
        rootfs = os.path.join(base, "rootfs")
        for d in ("bin", "etc", "tmp"):
            os.makedirs(os.path.join(rootfs, d))
        shutil.copy(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        for applet in ("sh", "cat", "true", "nc", "sleep", "kill"):
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
        tarball = os.path.join(base, "rootfs.tar")
        subprocess.run(["tar", "-C", rootfs, "-cf", tarball, "."], check=True)
        p("import", tarball, IMAGE)
        yield p
    finally:
        p("rm", "-a", "-f", "-t", "0", check=False)
        p.elsewhere()("rm", "-a", "-f", "-t", "0", check=False)
        p("rmi", "-a", "-f", check=False)
        # podman's clean-up does not pass --runtime-flag on to runc: the
        # cgroups of a container whose runc state was elsewhere stay, empty
        for cid in p.started:
            for d in libpod_dirs("libpod-" + cid):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        # what podman may leave mounted (a container's /dev/shm) goes first
        subprocess.run(["umount", "-R", "-l", base], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        if ours:
            shutil.rmtree(ours[0], ignore_errors=True)
        for d in libpod_dirs() - parents:
            for cgroup in (os.path.join(d, "conmon"), d):    # conmon's own, on cgroup v1
                try:
                    os.rmdir(cgroup)
                except OSError:
                    pass        # a container of someone else's is in it


def libpod_dirs(below=""):
    """podman's libpod_parent cgroup (cgroupfs manager) in every hierarchy
    (cgroup v2's, and a hybrid host's v1 ones), or the cgroup below it."""
    import glob
    return {d for pattern in ("/sys/fs/cgroup/libpod_parent", "/sys/fs/cgroup/*/libpod_parent",
                              cgroup2_root() + "/libpod_parent")
            for d in glob.glob(os.path.join(pattern, below)) if os.path.isdir(d)}


def go(pid):
    """Let the container whose init has host pid pid run its script."""
    open("/proc/%d/root/tmp/go" % pid, "w").close()


def cgroup_id(cid):
    return os.stat(os.path.join(cgroup2_root(), "libpod_parent", "libpod-" + cid)).st_ino


@pytest.fixture
def names():
    n = os.getpid()
    return "web%d" % n, "other%d" % n


def test_events_carry_the_container_and_the_filter_keeps_only_it(podman, names):
    web, other = names
    web_id, web_pid = podman.start(web)
    other_id, other_pid = podman.start(other)
    web_cgroup = cgroup_id(web_id)          # while it exists
    tracers = {
        "opensnoop": Tracer("opensnoop", "--container", web, "--path", "/etc/hostname"),
        "execsnoop": Tracer("execsnoop", "--container", web),
        "bindsnoop": Tracer("bindsnoop", "--container", web),
        "exitsnoop": Tracer("exitsnoop", "--container", web),
    }
    try:
        for t in tracers.values():
            t.__enter__()
        go(other_pid)
        go(web_pid)
        subprocess.run(["cat", "/etc/hostname"], stdout=subprocess.DEVNULL, check=True)  # the host
        assert podman.wait(web_id) == EXIT_CODE
        assert podman.wait(other_id) == EXIT_CODE
        time.sleep(0.2)
    finally:
        for t in tracers.values():
            if hasattr(t, "proc"):
                t.stop()
    keys = {"container_id": web_id, "container_runtime": "podman", "container_name": web,
            "cgroup_id": web_cgroup}
    for tool, t in tracers.items():
        assert t.returncode == 0, (tool, t.stderr)
        assert t.events, (tool, t.stderr)
        for e in t.events:
            assert {k: e.get(k) for k in keys} == keys, (tool, e)
            # the container's own pid namespace numbers its tasks from 1
            assert 0 < e["vpid"] < e["pid"], (tool, e)
    opens = tracers["opensnoop"].events
    assert [(e["comm"], e["path"], e["err"]) for e in opens] == [("cat", "/etc/hostname", 0)]
    assert any(e["args"] == ["/bin/true"] and e["ret"] == 0 for e in tracers["execsnoop"].events)
    binds = tracers["bindsnoop"].events
    assert [(e["comm"], e["port"], e["ret"]) for e in binds] == [("nc", PORT, 0)]
    exits = {e["vpid"]: e for e in tracers["exitsnoop"].events}
    assert exits[1]["exit_code"] == EXIT_CODE and exits[1]["comm"] == "sh"    # its init


def test_text_column_names_each_container_and_the_host(podman, names):
    web, other = names
    started = [podman.start(n, OPEN_ONCE)
               for n in (web + "t", other + "t")]
    every = Tracer("opensnoop", "--containers", "--path", "/etc/hostname", json_mode=False)
    only = Tracer("opensnoop", "--container", web + "t", "--path", "/etc/hostname",
                  json_mode=False)
    with every, only:
        for _, pid in started:
            go(pid)
        for cid, _ in started:
            assert podman.wait(cid) == 0
        subprocess.run(["cat", "/etc/hostname"], stdout=subprocess.DEVNULL, check=True)
    header = ["CONTAINER", "PID", "COMM", "FD", "ERR", "PATH"]
    lines = every.stdout.splitlines()
    assert lines[0].split() == header
    seen = {(line.split()[0], line.split()[2]) for line in lines[1:]}
    assert {(web + "t", "cat"), (other + "t", "cat"), ("-", "cat")} <= seen
    # --container NAME: its name on every line, and only its lines
    lines = only.stdout.splitlines()
    assert lines[0].split() == header
    assert [(line.split()[0], line.split()[2], line.split()[-1]) for line in lines[1:]] == \
        [(web + "t", "cat", "/etc/hostname")]


def test_all_containers_and_host_only(podman, names):
    web, _ = names
    cid, pid = podman.start(web + "a", OPEN_ONCE)
    with Tracer("opensnoop", "--all-containers", "--path", "/etc/hostname") as inside, \
            Tracer("opensnoop", "--host-only", "--path", "/etc/hostname") as host:
        go(pid)
        assert podman.wait(cid) == 0
        subprocess.run(["cat", "/etc/hostname"], stdout=subprocess.DEVNULL, check=True)
    assert {e.get("container_name") for e in inside.events} == {web + "a"}
    assert host.events and all("container_id" not in e for e in host.events)


def test_a_container_recreated_while_tracing_is_followed(podman, names):
    """The same name, a new container (a new id and cgroup) after the tool
    started: added at the tool's first poll after its cgroup appears (inotify
    on the directory it appears in), well before the next periodic walk."""
    web, _ = names
    name = web + "r"
    first, _ = podman.start(name, "sleep 60")
    with Tracer("opensnoop", "--container", name, "--path", "/etc/hostname") as t:
        podman("rm", "-f", "-t", "0", first)
        cid, pid = podman.start(name, OPEN_ONCE)
        time.sleep(0.2)         # a few polls (loop.POLL_SECONDS), < filters.REFRESH_SECONDS
        go(pid)
        assert podman.wait(cid) == 0
    assert [(e["container_id"], e["container_name"]) for e in t.events] == [(cid, name)]


def test_name_found_through_conmon_when_runc_keeps_its_state_elsewhere(podman, names):
    """runc's state under a root of the test's own, not /run/runc: the
    bundle (and so the name) comes from conmon's command line."""
    web, _ = names
    name = web + "c"
    elsewhere = podman.elsewhere()
    cid, pid = elsewhere.start(name, OPEN_ONCE)
    try:
        assert not os.path.exists("/run/runc/" + cid)
        with Tracer("opensnoop", "--container", name, "--path", "/etc/hostname") as t:
            go(pid)
            assert elsewhere.wait(cid) == 0
        assert [(e["container_id"], e["container_name"]) for e in t.events] == [(cid, name)]
    finally:
        elsewhere("rm", "-f", "-t", "0", cid)


def test_unknown_container_exits_2_naming_those_that_exist(podman, names):
    web, _ = names
    cid, _ = podman.start(web + "u", "sleep 60")
    try:
        r = run_tool("opensnoop", "--container", "no-such-container")
        assert r.returncode == 2
        last = r.stderr.splitlines()[-1]
        assert last.startswith("opensnoop: error: --container no-such-container: "
                               "no such container (running: ")
        assert web + "u" in last
        assert "Traceback" not in r.stderr
        r = run_tool("opensnoop", "--container", web + "u", "--host-only")
        assert r.returncode == 2
        assert "--container and --host-only cannot be used together" in r.stderr
    finally:
        podman("rm", "-f", "-t", "0", cid)


@pytest.mark.parametrize("tool", TOOLS)
def test_every_tool_loads_with_the_container_filter(tool):
    """Each object through the verifier with the filter on (nothing need
    run in a container for that); dcsnoop where this kernel lets it run."""
    import pty
    master, slave = pty.openpty()
    args = [os.ttyname(slave)] if tool == "ttysnoop" else []
    try:
        if tool == "dcsnoop" and not (fentry_allowed() or kernel.has_kprobes()):
            r = run_tool(tool, "--all-containers")
            assert r.returncode == 1 and r.stderr.startswith(
                "dcsnoop: cannot trace on this kernel: "), r.stderr
            return
        with Tracer(tool, *args, "--all-containers", "--containers", json_mode=False) as t:
            pass
        assert t.returncode == 0, t.stderr
        assert "Traceback" not in t.stderr
    finally:
        os.close(master)
        os.close(slave)
