"""Code made at start-up for one tool's events, in one place.

The per-event path is made of functions written for the tool at hand: the
decoder of its struct event (btf.Layout.function), the line of its columns
(output._line_function), the JSON of each record shape
(output._shape_encoder). Straight-line code with each field's and cell's
work inline costs half of the general loops it replaces, and that margin is
measured and needed (make bench). Made here, each has a name of its own,
its source can be found by linecache (so a traceback shows the line that
failed, not "<string>"), and SNOOPTOOLS_SHOW_CODE=1 prints every one on
stderr as it is made.

The source is found through the function's globals (linecache's lazy
cache: a __loader__ with get_source()) rather than put in linecache's
cache: importing linecache (and tokenize with it) cost every start ~8 ms.
"""
import itertools
import os
import sys

_serial = itertools.count(1)


class Source:
    """The __loader__ of made code: linecache asks it for the source."""

    def __init__(self, source):
        self.source = source

    def get_source(self, name):
        return self.source


def function(name, source, scope, what):
    """The function name that source defines, run with scope as its
    globals; what says what it is for (in its file name and in the
    listing)."""
    # not <...>: linecache looks for no source of such a name; this one
    # is no file either (a directory "snooptools: ..." at the root)
    filename = "/snooptools: %s #%d" % (what, next(_serial))
    scope.update(__name__=filename, __loader__=Source(source))
    exec(compile(source, filename, "exec"), scope)
    if os.environ.get("SNOOPTOOLS_SHOW_CODE"):
        sys.stderr.write("# %s\n%s\n" % (filename, source))
    return scope[name]


def indent(source, levels):
    """The lines of source, each indented levels times four spaces (a piece
    of made code put inside another)."""
    pad = "    " * levels
    return "".join(pad + line + "\n" for line in source.splitlines())
