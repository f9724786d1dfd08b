"""Decoding kernel bytes, escaping, columns, JSON and summaries."""
import json

from helpers import Collect

from snooptools.output import (Column, JsonWriter, Summary, TextWriter, cell, escape, json_safe,
                                kstr)


def test_kstr_stops_at_nul_and_keeps_invalid_utf8():
    assert kstr(b"abc\0garbage") == "abc"
    s = kstr(b"caf\xc3\xa9-\xff\xfe\0")
    assert s == "café-\udcff\udcfe"
    assert s.encode("utf-8", "surrogateescape") == b"caf\xc3\xa9-\xff\xfe"


def test_escape_makes_control_and_invalid_bytes_visible():
    assert escape("plain path/ok é") == "plain path/ok é"
    assert escape("a\nb\tc\rd\x1b[31m") == "a\\nb\\tc\\rd\\e[31m"
    assert escape(kstr(b"bad\xff\x01")) == "bad\\xff\\x01"
    assert escape("\u200b") == "\\u200b"


def test_json_safe_replaces_invalid_bytes():
    assert json_safe(kstr(b"x\xffy")) == "x\ufffdy"
    assert json_safe("ok\n") == "ok\n"


def test_text_writer_header_and_rows_share_one_declaration():
    out = Collect()
    w = TextWriter([Column("COMM", "comm", -16), Column("PID", "pid", -7),
                    Column("RET", "ret", 3), Column("ARGS", None, fmt=lambda r: " ".join(r["args"]))],
                   out)
    w.header()
    w.write({"comm": "ls\n", "pid": 42, "ret": -2, "args": ["/bin/ls", "-l"]})
    w.flush()
    assert out.getvalue() == ("COMM             PID     RET ARGS\n"
                              "ls\\n             42       -2 /bin/ls -l\n")


def test_header_aligned_apart_from_its_values_and_a_wider_gap():
    # bindsnoop's PORT header is BCC's %-5s over %5d values, OPTS the other
    # way round; BCC's --count table has five spaces before BINDS
    out = Collect()
    w = TextWriter([Column("PORT", "port", 5, head=-5), Column("OPTS", "opts", -5, head=5),
                    Column("IF", "dev", 2), Column("BINDS", "n", -10, sep="     ")], out)
    w.header()
    w.write({"port": 80, "opts": "...R.", "dev": 0, "n": 3})
    w.flush()
    assert out.getvalue() == ("PORT   OPTS IF     BINDS\n"
                              "   80 ...R.  0     3\n")


def test_text_cells_of_every_type_as_cell_makes_them():
    # the line function passes ints and printable text through as they are,
    # and everything else through cell(): the result is cell()'s either way
    values = [7, -1, True, False, 2.5, None, "ok", "tab\there", kstr(b"x\xff"), ["a", 3], ""]
    cols = [Column("V", "it's \"v\"", 5)]
    out = Collect()
    w = TextWriter(cols, out, rows=lambda rec: [{"it's \"v\"": v} for v in rec["all"]])
    w.write({"all": values})
    w.flush()
    assert out.getvalue() == "".join("%5s\n" % cell(v) for v in values)
    assert out.getvalue().split("\n")[2:4] == ["    Y", "    N"]


def test_json_writer_one_object_per_line():
    out = Collect()
    w = JsonWriter(out)
    w.write({"pid": 1, "path": kstr(b"a\xff"), "args": [kstr(b"\xfe")]})
    w.write({"pid": 2, "path": "b"})
    w.write({"pid": 3, "path": kstr("café".encode())})
    w.flush()
    text = out.getvalue()
    assert text.encode("utf-8")         # no lone surrogates: valid UTF-8 text
    assert [json.loads(x) for x in text.splitlines()] == [
        {"pid": 1, "path": "a\ufffd", "args": ["\ufffd"]}, {"pid": 2, "path": "b"},
        {"pid": 3, "path": "café"}]


def test_summary_counts_by_task_and_key():
    s = Summary("path", "PATH")
    for comm, pid, path in [("cat", 1, "/a"), ("cat", 1, "/a"), ("ls", 2, "/b")]:
        s.add({"comm": comm, "pid": pid, "path": path})
    text = s.render(lost=3)
    assert text.startswith("3 events, 3 lost\n")
    rows = [line.split() for line in text.splitlines()]
    assert ["cat", "1", "2"] in rows and ["ls", "2", "1"] in rows
    assert ["/a", "2"] in rows and ["/b", "1"] in rows


def test_json_records_of_changing_shapes_each_encoded_exactly():
    """Each record shape gets its own encoder; a record that does not fit
    the shape tried (other keys, or another type where an int, float or str
    was) must never come out in that shape's form."""
    records = [
        {"ts": 1.5, "fd": 3, "path": "/a", "args": ["x", "y"]},
        {"ts": 2.25, "fd": True, "path": "/b", "args": []},        # bool, not 1
        {"ts": 3.0, "fd": 2.75, "path": "/c", "args": None},       # float, not 2
        {"ts": 4, "fd": None, "path": None, "args": [1]},
        {"ts": 5.5, "fd": 4, "path": "/d"},                         # a key fewer
        {"ts": 6.5, "fd": 5, "file": "/e", "args": []},             # another key
        {"ts": 7.5, "path": "/f", "fd": 6, "args": ["z"]},          # other order
        {"100%": 1, "%s": "%d", "q\"": "\\"},                      # awkward keys
    ]
    records += [{"k%d" % i: i} for i in range(JsonWriter.SHAPES + 2)]   # too many
    records += records[:3]
    out = Collect()
    w = JsonWriter(out)
    for r in records:
        w.write(dict(r))
    w.flush()
    lines = out.getvalue().splitlines()
    assert [json.loads(x) for x in lines] == records
    # ts to the microsecond, other floats as repr() has them
    assert lines[1] == '{"ts":2.250000,"fd":true,"path":"/b","args":[]}'
    assert lines[2] == '{"ts":3.000000,"fd":2.75,"path":"/c","args":null}'
    # and the same from the generic encoder (past SHAPES shapes)
    w.write({"ts": 1.23456789, "x%d" % JsonWriter.SHAPES: 0})
    w.flush()
    assert out.getvalue().splitlines()[-1] == '{"ts":1.234568,"x%d":0}' % JsonWriter.SHAPES
