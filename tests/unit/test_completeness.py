"""Every tool has all of its pieces, and its docs match its parser."""
import os
import subprocess
import sys

import pytest

from helpers import COMMANDS, ROOT, TOOLS


def test_there_are_tools():
    assert {"execsnoop", "opensnoop"} <= set(TOOLS)


@pytest.mark.parametrize("tool", TOOLS)
def test_tool_has_every_piece(tool):
    assert os.access(ROOT / "tools" / tool, os.X_OK)
    for piece in ("bpf/%s.bpf.c", "man/include/%s.man", "man/man8/%s.8",
                  "examples/%s_example.txt", "tests/live/test_%s.py", "build/bpf/%s.bpf.o"):
        assert (ROOT / (piece % tool)).is_file(), piece % tool


@pytest.mark.parametrize("command", COMMANDS)
def test_command_has_every_piece(command):
    assert os.access(ROOT / "tools" / command, os.X_OK)
    for piece in ("man/include/%s.man", "man/man8/%s.8", "examples/%s_example.txt",
                  "tests/live/test_%s.py"):
        assert (ROOT / (piece % command)).is_file(), piece % command


@pytest.mark.parametrize("tool", TOOLS + COMMANDS)
def test_example_usage_matches_help(tool):
    text = (ROOT / "examples" / ("%s_example.txt" % tool)).read_text()
    marker = "USAGE message:\n\n# %s -h\n" % tool
    assert marker in text
    help_text = subprocess.run([sys.executable, str(ROOT / "tools" / tool), "-h"],
                               env=dict(os.environ, COLUMNS="80"), capture_output=True,
                               text=True, check=True).stdout
    assert text.split(marker, 1)[1] == help_text


@pytest.mark.parametrize("tool", TOOLS + COMMANDS)
def test_man_page_lists_every_option(tool):
    page = (ROOT / "man" / "man8" / ("%s.8" % tool)).read_text()
    assert ".SH EXAMPLES" in page and ".SH FIELDS" in page
    help_text = subprocess.run([sys.executable, str(ROOT / "tools" / tool), "-h"],
                               capture_output=True, text=True, check=True).stdout
    for word in help_text.split():
        if word.startswith("--") and word.rstrip(",") != "--help":
            assert word.rstrip(",").replace("-", "\\-") in page, word
