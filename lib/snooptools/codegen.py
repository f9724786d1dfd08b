"""Code made at start-up for one tool's events, in one place.

The per-event path is made of functions written for the tool at hand: the
decoder of its struct event (btf.Layout.function), the line of its columns
(output._line_function), the JSON of each record shape
(output._shape_encoder). Straight-line code with each field's and cell's
work inline costs half of the general loops it replaces, and that margin is
measured and needed (make bench). Made here, each has a name of its own,
its source is registered with linecache (so a traceback shows the line that
failed, not "<string>"), and SNOOPTOOLS_SHOW_CODE=1 prints every one on
stderr as it is made.
"""
import itertools
import linecache
import os
import sys

_serial = itertools.count(1)


def function(name, source, scope, what):
    """The function name that source defines, run with scope as its
    globals; what says what it is for (in its file name and in the
    listing)."""
    filename = "<snooptools %s #%d>" % (what, next(_serial))
    lines = source.splitlines(keepends=True)
    # a (size, mtime, lines, fullname) entry with mtime None is never
    # checked against a file, so it stays for as long as the process
    linecache.cache[filename] = (len(source), None, lines, filename)
    exec(compile(source, filename, "exec"), scope)
    if os.environ.get("SNOOPTOOLS_SHOW_CODE"):
        sys.stderr.write("# %s\n%s\n" % (filename, source))
    return scope[name]
