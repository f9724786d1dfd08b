"""dcsnoop, live, once per variant (SNOOPTOOLS_VARIANT forces one): where
the kernel offers the variant, a held child's lookup of a missing file is an
M event; where it does not, the tool says why in one line and exits 1."""
import os
import subprocess
import sys
import tempfile

import pytest

from helpers import PYTHON_COMM, Tracer, fentry_allowed, run_tool
from snooptools import kernel

HINT = "(no tracepoint covers dcache lookups; dcsnoop needs fentry or kprobes)"


def available(variant):
    return fentry_allowed() if variant == "fentry" else kernel.has_kprobes()


def lookup_missing(*args, variant):
    """A child stats <tmpdir>/sub/missing-<pid>; returns (tracer, pid, dir)."""
    d = tempfile.mkdtemp()
    os.mkdir(d + "/sub")
    child = subprocess.Popen(
        [sys.executable, "-c", "import os, sys\nsys.stdin.readline()\n"
         "os.path.exists(sys.argv[1] + '/sub/missing-%d' % os.getpid())", d],
        stdin=subprocess.PIPE, text=True)
    try:
        with Tracer("dcsnoop", "--pid", str(child.pid), *args,
                    env={"SNOOPTOOLS_VARIANT": variant}) as t:
            child.communicate("go\n", timeout=10)
    finally:
        os.rmdir(d + "/sub")
        os.rmdir(d)
    return t, child.pid, d


@pytest.mark.parametrize("variant", ["fentry", "kprobe"])
def test_miss_of_a_missing_file(variant):
    if not available(variant):
        r = run_tool("dcsnoop", env=dict(os.environ, SNOOPTOOLS_VARIANT=variant))
        why = ("refused by the kernel" if variant == "fentry" else "not built into this kernel")
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr.startswith("dcsnoop: cannot trace on this kernel: %s: %s" % (variant, why))
        assert r.stderr.endswith(HINT + "\n") and r.stderr.count("\n") == 1
        return
    t, pid, d = lookup_missing(variant=variant)
    assert "(%s)" % variant in t.stderr
    misses = [e for e in t.events if e["file"] == "missing-%d" % pid]
    assert [(e["type"], e["pid"], e["comm"]) for e in misses] == [("M", pid, PYTHON_COMM)]
    assert all(e["type"] == "M" for e in t.events)      # no references without -a

    # -a: each component looked up is a reference, showing the rest of the path
    t, pid, d = lookup_missing("-a", variant=variant)
    name = "missing-%d" % pid
    refs = [e["file"] for e in t.events if e["type"] == "R" and name in e["file"]]
    assert "sub/" + name in refs
    assert ("M", name) in [(e["type"], e["file"]) for e in t.events]


def test_best_variant_is_chosen_or_one_line_says_why():
    best = "fentry" if fentry_allowed() else "kprobe" if kernel.has_kprobes() else None
    if best:
        with Tracer("dcsnoop", "--pid", "1") as t:
            pass
        assert "Tracing dcache lookups (%s)" % best in t.stderr
        return
    r = run_tool("dcsnoop", "-a")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("dcsnoop: cannot trace on this kernel: fentry: refused by the kernel "
                        "(Operation not permitted); kprobe: not built into this kernel %s\n" % HINT)
