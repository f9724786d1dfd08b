"""Output, declared once per tool: columns drive both the header and every
row; --json writes one object per event; --summary draws tables at exit.

Events carry raw values. Kernel bytes become str in one place, kstr(), which
keeps undecodable bytes (as surrogates) so that each output mode can show
them its own way: escaped as \\xNN in text, replaced in JSON.
"""
import time

from . import codegen


def kstr(raw, length=None):
    """Kernel bytes as str: the first length of them, or (without a length)
    those up to the first NUL. Invalid UTF-8 survives as surrogate escapes."""
    if length is not None:
        raw = raw[:length]
    else:
        end = raw.find(b"\0")
        if end >= 0:
            raw = raw[:end]
    return raw.decode("utf-8", "surrogateescape")


_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\e"}


def escape(s):
    """s with control and non-printable characters made visible, so that a
    file name or an argument cannot drive the terminal."""
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if ch.isprintable():
            out.append(ch)
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        else:
            o = ord(ch)
            if 0xdc80 <= o <= 0xdcff:          # an undecodable byte
                out.append("\\x%02x" % (o - 0xdc00))
            elif o < 0x100:
                out.append("\\x%02x" % o)
            else:
                out.append("\\u%04x" % o if o < 0x10000 else "\\U%08x" % o)
    return "".join(out)


def json_safe(s):
    """s with undecodable bytes replaced by U+FFFD (JSON text must be UTF-8)."""
    if s.isprintable() or s.isascii():
        return s
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class Column:
    """One text column: header, the record key it shows, a printf width
    (negative: left-aligned, as BCC's %-16s), and an optional formatter of
    that value (or, when key is None, of the whole record). Two details
    some BCC tables have: head, the header's own width where BCC aligns it
    unlike the values below it (bindsnoop's PORT header is %-5s over %5d
    values), and sep, what comes before the column (one space, or BCC's
    own gap). live: its text of one value can change (a container's name,
    found later)."""

    __slots__ = ("header", "key", "width", "fmt", "head", "sep", "live")

    def __init__(self, header, key, width=0, fmt=None, head=None, sep=" ", live=False):
        self.header, self.key, self.width, self.fmt = header, key, width, fmt
        self.head = width if head is None else head
        self.sep, self.live = sep, live

    def spec(self, last, width=None):
        width = self.width if width is None else width
        return "%s" if last and width <= 0 else "%" + str(width) + "s"


def _line_format(columns, header=False):
    """The printf format of a line of these columns (of their header)."""
    n = len(columns)
    return "".join((c.sep if i else "") + c.spec(i == n - 1, c.head if header else None)
                   for i, c in enumerate(columns))


def comm_column(width=-16, cut=False):
    """The COMM column: BCC's %-16s, or (cut) its %-14.14s kind, where the
    name, made visible first (escape), is cut to the column's width."""
    if not cut:
        return Column("COMM", "comm", width)
    n = abs(width)
    return Column("COMM", "comm", width, lambda comm: escape(comm)[:n])


def cell(value):
    """The text of one raw value."""
    if type(value) is str:
        return value if value.isprintable() else escape(value)
    if type(value) is int:
        return str(value)
    if isinstance(value, (list, tuple)):
        return " ".join(escape(v) if isinstance(v, str) else str(v) for v in value)
    if isinstance(value, bool):
        return "Y" if value else "N"
    return str(value)


class Clock:
    """Turns bpf_ktime_get_ns() (CLOCK_MONOTONIC) into wall-clock seconds."""

    def __init__(self):
        self.start = time.time()
        self.offset = self.start - time.monotonic()
        self._sec, self._hms = None, ""

    def epoch(self, ktime_ns):
        return ktime_ns / 1e9 + self.offset

    def hms(self, ts):
        sec = int(ts)
        if sec != self._sec:
            self._sec, self._hms = sec, time.strftime("%H:%M:%S", time.localtime(sec))
        return self._hms


class PendingLines:
    """A writer's events' lines, kept in _pending by write() until flush()."""

    def text(self, rec):
        """rec's line as write() makes it, kept for no flush (--otlp-only)."""
        line = self.write(rec)
        self._pending.pop()
        return line


class TextWriter(PendingLines):
    """Rows of columns, written to a sink.Sink at each flush. rows(rec), when
    given, turns one record into the records of its lines (sofdsnoop: one
    line per passed fd). pending: a list of lines shared with other writers
    of the same sink, which any of them flushes (snoop: one stream of
    several tools' lines, in order)."""

    def __init__(self, columns, sink, rows=None, pending=None):
        self.columns = columns
        self.sink = sink
        self._rows = rows
        self._fmt = _line_format(columns) + "\n"
        self._head = _line_format(columns, header=True)
        self._line = _line_function(columns, self._fmt)
        self._pending = [] if pending is None else pending
        if rows is None:
            self.text = self._line      # PendingLines.text(), without keeping it at all
        # The same values (but the time) make the same line: no column shows
        # the time, a whole record, or a text that can change (--otlp-only
        # makes a line once for each record's values: otlp.Encoder.lines_from)
        self.of_values = rows is None and all(c.key not in (None, "ts") and not c.live
                                              for c in columns)

    def header(self):
        self.sink.write(self.header_line())

    def header_line(self, **headers):
        """The header, with the headers of some columns (by key) replaced."""
        return (self._head % tuple(headers.get(c.key, c.header) for c in self.columns)
                ).rstrip() + "\n"

    def write(self, rec):
        """Keep rec's line (lines, with rows) for the next flush; return it."""
        if self._rows:
            line = "".join(map(self._line, self._rows(rec)))
        else:
            line = self._line(rec)
        self._pending.append(line)
        return line

    def flush(self):
        """Write the lines of the events since the last flush (one entry of
        _pending each: what the sink counts when it cannot write them)."""
        if self._pending:
            lines = self._pending.copy()
            self._pending.clear()       # in place: other writers may share it
            self.sink.write("".join(lines), lines)


def _line_function(columns, fmt):
    """rec -> its line, for these columns: one function made for them, with
    each cell's code inline. A value that is an int or printable text goes
    into the line as it is (what cell() would make of it); others through
    cell(), or the column's own formatter. Per event, this is half the cost
    of a call per cell."""
    env = {"fmt": fmt, "cell": cell, "str": str, "int": int, "type": type}
    body, cells = [], []
    for i, c in enumerate(columns):
        v = "v%d" % i
        value = "rec" if c.key is None else "rec[%r]" % c.key
        if c.fmt:
            env["f%d" % i] = c.fmt
            body.append("    %s = f%d(%s)" % (v, i, value))
        else:
            body.append("    %s = %s" % (v, value))
            body.append("    if type(%s) is not int and not (type(%s) is str and %s.isprintable()):"
                        % (v, v, v))
            body.append("        %s = cell(%s)" % (v, v))
        cells.append(v)
    code = "def line(rec):\n%s\n    return fmt %% (%s,)\n" % ("\n".join(body), ", ".join(cells))
    return codegen.function("line", code, env, "line of " + " ".join(c.header for c in columns))


def is_utf8(text):
    """Whether UTF-8 can carry text: no undecodable bytes (kstr()'s
    surrogate escapes) in it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_encoder():
    """obj -> compact JSON text, for any record. Non-ASCII text stays as it
    is (only the rare line with some is checked for undecodable bytes).
    CPython's C encoder is made once and called directly: json.dumps() builds
    one per call, which costs as much as encoding an event."""
    import json
    from json import encoder
    if encoder.c_make_encoder is None:
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

    def default(o):
        raise TypeError("%r is not JSON serializable" % (o,))

    c = encoder.c_make_encoder(None, default, encoder.encode_basestring, None, ":", ",",
                               False, False, True)
    join = "".join
    return lambda obj: join(c(obj, 0))


def _shape_encoder(rec, generic):
    """An encoder of records shaped like rec: the same keys, and an int, a
    float or a str wherever rec has one. It is one %-format of a template
    with the keys already in it, about twice as fast as the generic encoder
    (which still writes the values of other types: lists, bools, None). A
    record of another shape makes it return None, never a wrong line: a
    missing key or a str slot holding something else raises, and int and
    float slots check their type (%d would print a bool as 1, a float cut)."""
    from json.encoder import encode_basestring
    parts, names, values, ints, floats = [], [], [], [], []
    for i, (key, value) in enumerate(rec.items()):
        name = "v%d" % i
        names.append("%s = r[%r]" % (name, key))
        kind = type(value)
        if kind is int or kind is float:
            # ts to the microsecond: all that the clock's offset can tell
            spec = "%d" if kind is int else "%.6f" if key == "ts" else "%r"
            (ints if kind is int else floats).append("type(%s)" % name)
            values.append(name)
        else:
            spec = "%s"
            values.append("%s(%s)" % ("text" if kind is str else "generic", name))
        parts.append(encode_basestring(key).replace("%", "%%") + ":" + spec)
    checks = ["int is " + " is ".join(ints)] if ints else []
    checks += ["float is " + " is ".join(floats)] if floats else []
    src = ("def encode(r):\n"
           "    if len(r) != %d:\n"
           "        return None\n"
           "    try:\n"
           "        %s\n"
           "        if %s:\n"
           "            return template %% (%s)\n"
           "    except (KeyError, TypeError):\n"
           "        pass\n"
           "    return None\n") % (len(rec), "\n        ".join(names),
                                  " and ".join(checks) or "True", "".join(v + ", " for v in values))
    scope = {"template": "{" + ",".join(parts) + "}", "text": encode_basestring,
             "generic": generic}
    return codegen.function("encode", src, scope, "JSON of records of " + ", ".join(rec))


class JsonWriter(PendingLines):
    """One object per line. Records mostly come in a few shapes per tool;
    each shape seen gets its own encoder (_shape_encoder), the last one
    that served is tried first, and past SHAPES of them the generic encoder
    takes the rest."""

    SHAPES = 8

    def __init__(self, sink, pending=None):
        self._dumps = _json_encoder()
        self._shapes = []
        self.sink = sink
        # lines, without their newlines (pending: shared, as TextWriter's)
        self._pending = [] if pending is None else pending

    def header(self):
        pass

    def _encode(self, rec):
        """rec as a line, when the last shape (tried by write) did not fit."""
        shapes = self._shapes
        for i, enc in enumerate(shapes[1:], 1):
            line = enc(rec)
            if line is not None:
                shapes.insert(0, shapes.pop(i))
                return line
        if len(shapes) < self.SHAPES:
            shapes.insert(0, _shape_encoder(rec, self._dumps))
            line = shapes[0](rec)
            if line is not None:
                return line
        return self._generic(rec)

    def _generic(self, rec):
        """rec by the generic encoder, ts to the microsecond as in the shapes."""
        if type(rec.get("ts")) is float:
            rec["ts"] = round(rec["ts"], 6)
        return self._dumps(rec)

    def write(self, rec):
        line = self._shapes and self._shapes[0](rec) or self._encode(rec)
        if not line.isascii() and not is_utf8(line):
            # undecodable bytes (surrogate escapes) in some string: replace
            for k, v in rec.items():
                if isinstance(v, str):
                    rec[k] = json_safe(v)
                elif isinstance(v, (list, tuple)):
                    rec[k] = [json_safe(x) if isinstance(x, str) else x for x in v]
            line = self._generic(rec)
        self._pending.append(line)
        return line

    def flush(self):
        if self._pending:
            lines = self._pending.copy()
            self._pending.clear()       # in place: other writers may share it
            lines.append("")
            data = "\n".join(lines)
            lines.pop()
            self.sink.write(data, lines, 1)


class Summary:
    """Event counts by (comm, pid) and by the tool's own key, drawn with
    tabulate at exit."""

    def __init__(self, key=None, key_header=None):
        from collections import Counter
        self.key, self.key_header = key, key_header
        self.by_task = Counter()
        self.by_key = Counter()
        self.events = 0

    def add(self, rec):
        self.events += 1
        self.by_task[(rec["comm"], rec["pid"])] += 1
        if self.key:
            v = rec.get(self.key)
            self.by_key[tuple(v) if isinstance(v, list) else v] += 1

    def render(self, lost, unwritten=0, not_followed=None, unexported=None, top=20):
        """not_followed: with --tree or --exec, the processes of the tree
        left out (the kernel's map of them full); unexported: the events
        not exported (None: no export)."""
        try:
            from tabulate import tabulate
        except ImportError:
            return "summary unavailable: the tabulate module is missing (pip install tabulate)\n"
        parts = ["%d events, %d lost" % (self.events, lost)
                 + (", %d not written" % unwritten if unwritten else "")
                 + (", %d not exported" % unexported if unexported is not None else "")
                 + ("; %d processes of the tree not followed" % not_followed
                    if not_followed is not None else "")]
        rows = [(escape(c), p, n) for (c, p), n in self.by_task.most_common(top)]
        parts.append(tabulate(rows, headers=["COMM", "PID", "EVENTS"]))
        if self.key:
            rows = [(cell(k) if k is not None else "-", n) for k, n in self.by_key.most_common(top)]
            parts.append(tabulate(rows, headers=[self.key_header or self.key.upper(), "EVENTS"]))
        return "\n\n".join(parts) + "\n"
