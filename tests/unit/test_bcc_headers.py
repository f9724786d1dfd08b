"""BCC's header lines (tests/bcc_compat.py), drawn without a kernel: each
documented command line is parsed by the tool's own parser and the header
made by its own writer, as a running tool makes it. This covers dcsnoop,
whose rows the live tier can only run where fentry or kprobes exist. Rows
that name a pinned map (--cgroupmap, --mntnsmap) are left to the live tier:
their parsing needs one, and so root."""
import os
import shlex

import pytest

from bcc_compat import ROWS, a_disk
from helpers import Collect
from snooptools import Tool
from snooptools.output import Clock
from test_layout import tool_module


@pytest.fixture(scope="module")
def places():
    master, slave = os.openpty()
    pts = os.ttyname(slave)
    yield dict(pts=pts, ptsnum=pts.rsplit("/", 1)[1], disk=a_disk(), user="root")
    os.close(master)
    os.close(slave)


def tool_class(name):
    mod = tool_module(name)
    [cls] = [v for v in vars(mod).values()
             if isinstance(v, type) and issubclass(v, Tool) and v.__module__ == mod.__name__]
    return cls


def drawn_header(tool_name, argv):
    """The header the tool prints for argv, and whether it took argv (a
    usage error is SystemExit 2)."""
    tool = tool_class(tool_name)()
    args, _ = tool.parse(argv)
    tool.clock = Clock()
    out = Collect()
    tool.open_stdout = lambda encoding=None: out
    tool.writer(args).header()
    text = out.getvalue()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0] if lines else None


@pytest.mark.parametrize("row", [r for r in ROWS if "map}" not in r.args], ids=lambda r: r.id)
def test_bcc_header(row, places, capsys):
    argv = shlex.split(row.args.format(**places))
    if row.refused:
        with pytest.raises(SystemExit) as e:
            drawn_header(row.tool, argv)
        assert e.value.code == 2 and capsys.readouterr().err.startswith("usage: ")
        return
    assert drawn_header(row.tool, argv) == row.expected()


def test_a_wrong_header_is_seen():
    # the comparison can fail: killsnoop -e adds TCOMM to BCC's header
    assert drawn_header("killsnoop", ["-e"]).endswith(" RESULT TCOMM")
