"""--otlp without the kernel: attribute names, the JSON of a log record
(checked against the official schema), where requests go and with which
headers, and the exporter's batching, retries and loss accounting, driven
step by step with a fake clock and a fake collector."""
import argparse
import gzip
import random
import time

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otlp_receiver import attributes, parse_protobuf, value

from snooptools import SnoopError, __version__, otlp
from snooptools.output import Column, TextWriter, kstr

OPEN = {"ts": 1795811805.828964, "pid": 4242, "tid": 4243, "uid": 1000, "comm": "cat",
        "cgroup_id": 77, "call": "openat", "path": "/etc/passwd", "fd": 3, "err": 0,
        "flags": 524288, "mode": 0}
LINE = "4242   cat                 3   0 /etc/passwd"


def parse(body):
    """The request body (text, or gzipped JSON or protobuf) as the schema
    reads it."""
    if isinstance(body, bytes):
        body = gzip.decompress(body)
        if body[:1] != b"{":
            return parse_protobuf(body)
        body = body.decode()
    msg = ExportLogsServiceRequest()
    json_format.Parse(body, msg)        # an unknown field is an error
    return msg


def records_of(msg):
    return [r for rl in msg.resource_logs for sl in rl.scope_logs for r in sl.log_records]


def request(tool, *records):
    head, tail = otlp.request_parts(tool)
    return parse(head + ",".join(records) + tail)


# -- attribute names ------------------------------------------------------------------
def test_keys_take_the_semantic_conventions_names_where_one_fits():
    names = {k: otlp.attribute("opensnoop", k)[0] for k in OPEN}
    assert names == {"ts": "snoop.ts", "pid": "process.pid", "tid": "thread.id",
                     "uid": "process.real_user.id", "comm": "process.executable.name",
                     "cgroup_id": "snoop.cgroup_id", "call": "snoop.call", "path": "file.path",
                     "fd": "snoop.fd", "err": "snoop.err", "flags": "snoop.flags",
                     "mode": "snoop.mode"}
    for key, name in (("ppid", "process.parent_pid"), ("vpid", "process.vpid"),
                      ("container_id", "container.id"), ("container_name", "container.name"),
                      ("container_runtime", "container.runtime.name"), ("pod", "k8s.pod.name"),
                      ("namespace", "k8s.namespace.name"), ("pod_uid", "k8s.pod.uid")):
        assert otlp.attribute("killsnoop", key) == (name, None)


def test_a_key_is_named_by_convention_only_in_the_tool_where_it_means_that():
    assert otlp.attribute("execsnoop", "args") == ("process.command_args", None)
    assert otlp.attribute("exitsnoop", "exit_code") == ("process.exit.code", None)
    assert otlp.attribute("bindsnoop", "port") == ("network.local.port", None)
    assert otlp.attribute("bindsnoop", "addr") == ("network.local.address", None)
    assert otlp.attribute("syncsnoop", "addr") == ("snoop.addr", None)     # a memory address
    assert otlp.attribute("dcsnoop", "path") == ("snoop.path", None)
    name, convert = otlp.attribute("bindsnoop", "proto")
    assert (name, convert("TCP")) == ("network.transport", "tcp")
    name, convert = otlp.attribute("bindsnoop", "ip")
    assert (name, convert(6)) == ("network.type", "ipv6")


# -- the records ----------------------------------------------------------------------
def test_a_record_is_valid_otlp_with_exact_values():
    enc = otlp.Encoder("opensnoop")
    rec = enc(dict(OPEN), LINE, "1795811805900000000")
    msg = request("opensnoop", rec)
    (r,) = records_of(msg)
    assert r.time_unix_nano == 1795811805828964000
    assert r.observed_time_unix_nano == 1795811805900000000
    assert value(r.body) == LINE
    assert attributes(r.attributes) == {
        "process.pid": 4242, "thread.id": 4243, "process.real_user.id": 1000,
        "process.executable.name": "cat", "snoop.cgroup_id": 77, "snoop.call": "openat",
        "file.path": "/etc/passwd", "snoop.fd": 3, "snoop.err": 0, "snoop.flags": 524288,
        "snoop.mode": 0}
    assert '"intValue":"4242"' in rec             # int64 as a JSON string, as OTLP wants
    resource = attributes(msg.resource_logs[0].resource.attributes)
    assert resource["service.name"] == "opensnoop" and resource["service.version"] == __version__
    assert resource["host.name"] and resource["host.id"] == open("/etc/machine-id").read().strip()
    assert msg.resource_logs[0].scope_logs[0].scope.name == "snooptools"


def test_every_kind_of_value_and_the_generic_encoder_agree():
    enc = otlp.Encoder("execsnoop")
    rec = {"ts": 1700000000.5, "pid": 1, "tid": 1, "uid": 0, "comm": "sh", "ppid": 0,
           "args": ["/bin/sh", "-c", "x"], "args_truncated": True, "lat_ms": 0.25,
           "big": -(1 << 63), "none": None, "cpu": 3}
    text = enc(dict(rec), "line", "1")
    assert text == enc.generic(dict(rec), "line", "1")
    (r,) = records_of(request("execsnoop", text))
    attrs = attributes(r.attributes)
    assert attrs["process.command_args"] == ["/bin/sh", "-c", "x"]
    assert attrs["snoop.args_truncated"] is True and attrs["snoop.lat_ms"] == 0.25
    assert attrs["snoop.big"] == -(1 << 63) and attrs["cpu.logical_number"] == 3
    assert "snoop.none" not in attrs and "snoop.ts" not in attrs
    assert r.time_unix_nano == 1700000000500000000


def test_records_of_other_shapes_get_encoders_of_their_own():
    enc = otlp.Encoder("opensnoop")
    a = dict(OPEN)
    b = dict(OPEN, path=None)                 # None where a str was
    c = dict(OPEN, fd=True)                   # a bool where an int was
    d = dict(OPEN, extra=1)                   # one key more
    texts = [enc(dict(x), "l", "1") for x in (a, b, c, d, a)]
    assert texts == [enc.generic(dict(x), "l", "1") for x in (a, b, c, d, a)]
    got = [attributes(r.attributes) for r in records_of(request("opensnoop", *texts))]
    assert "file.path" not in got[1] and got[2]["snoop.fd"] is True and got[3]["snoop.extra"] == 1


def test_repeated_values_reuse_their_text_and_stay_exact():
    """A shape keeps the text after the times of the records it has seen
    (Encoder.CACHED of them): the same values at other times, a bool for
    the int of a kept record, and past CACHED records, all exact still."""
    enc = otlp.Encoder("opensnoop")
    enc.CACHED = 8
    # six (fd, line) pairs over and over, then more than CACHED new ones
    recs = [dict(OPEN, ts=OPEN["ts"] + i / 8, fd=i % 3 if i < 24 else i) for i in range(40)]
    recs.append(dict(OPEN, fd=True))            # True == 1, and hashes as 1
    lines = ["line %d" % (i % 2) for i in range(len(recs))]
    texts = [enc(dict(r), line, str(i)) for i, (r, line) in enumerate(zip(recs, lines))]
    assert texts == [enc.generic(dict(r), line, str(i))
                     for i, (r, line) in enumerate(zip(recs, lines))]
    assert len(enc._shapes) == 2
    assert all(0 < len(shape.__globals__["cache"]) <= 8 for shape in enc._shapes)


def test_undecodable_bytes_are_replaced_and_the_record_stays_valid():
    enc = otlp.Encoder("opensnoop")
    rec = dict(OPEN, path=kstr(b"/tmp/\xff\xfe\0"), comm=kstr(b"c\xc3\xa9\0"))
    (r,) = records_of(request("opensnoop", enc(rec, "line", "1")))
    attrs = attributes(r.attributes)
    assert attrs["file.path"] == "/tmp/\ufffd\ufffd" and attrs["process.executable.name"] == "cé"


def test_protobuf_records_are_the_json_records():
    """Every kind of value, records of several shapes, repeated values (the
    cache), undecodable bytes and an int past int64 (a string in both):
    the protobuf request parses to the very message the JSON one does, its
    shape encoders agree with its generic one, and its bytes are
    protobuf's own form (parse() checks)."""
    recs = [dict(OPEN), dict(OPEN, fd=-1), dict(OPEN, path=None), dict(OPEN, fd=True),
            dict(OPEN, extra=1 << 70), dict(OPEN), dict(OPEN, ts=OPEN["ts"] + 0.5),
            dict(OPEN, path=kstr(b"/tmp/\xff\xfe\0"), comm=kstr(b"c\xc3\xa9\0")),
            {"ts": 1700000000.9999996, "pid": 1, "tid": 1, "uid": 0, "comm": "sh", "ppid": 0,
             "args": ["/bin/sh", "-c", "x"], "args_truncated": True, "lat_ms": 0.25,
             "big": -(1 << 63), "none": None, "cpu": 3, "kv": {"a": [1, "b"]}, "empty": [],
             "zero": 0, "no": False, "blank": ""}]
    lines = ["line %d \u00e9" % (i % 3) for i in range(len(recs))]
    observed = 1795811805900000000
    json_enc, proto_enc = otlp.Encoder("opensnoop"), otlp.ProtoEncoder("opensnoop")
    texts = [json_enc(dict(r), line, str(observed)) for r, line in zip(recs, lines)]
    datas = [proto_enc(dict(r), line, otlp.pb_observed(observed)) for r, line in zip(recs, lines)]
    assert datas == [proto_enc.generic(dict(r), line, otlp.pb_observed(observed))
                     for r, line in zip(recs, lines)]
    assert len(proto_enc._shapes) > 1
    wire = otlp.Protobuf("opensnoop")
    from_proto = parse(gzip.compress(wire.body(datas)))
    assert from_proto == request("opensnoop", *texts)
    (r,) = records_of(request("opensnoop", texts[-1]))
    assert r.time_unix_nano == 1700000001000000000 and r.observed_time_unix_nano == observed
    assert attributes(records_of(from_proto)[4].attributes)["snoop.extra"] == str(1 << 70)


def test_protobuf_attributes_kept_one_by_one_stay_exact():
    """A protobuf shape keeps each attribute's bytes by its value too (past
    CACHED values, it starts again): records whose values were never seen
    together, a bool where an int was, and an int past int64, each still
    its generic encoding."""
    enc = otlp.ProtoEncoder("opensnoop")
    enc.CACHED = 4
    recs = [dict(OPEN, tid=4243 + i % 7, fd=i % 5, path="/p%d" % (i % 3)) for i in range(60)]
    recs += [dict(OPEN, fd=True), dict(OPEN, fd=1), dict(OPEN, fd=1 << 64), dict(OPEN, fd=1)]
    observed = otlp.pb_observed(1)
    assert enc.all([(dict(r), "l\n") for r in recs], observed) == \
        [enc.generic(dict(r), "l", observed) for r in recs]
    assert all(len(shape.__globals__["p8"]) <= 4 for shape in enc._shapes)


@pytest.mark.parametrize("make,observed", [(otlp.Encoder, "1"),
                                           (otlp.ProtoEncoder, otlp.pb_observed(1))])
def test_all_is_each_records_encoding(make, observed):
    """What the exporter calls, a drain's records at a time: the same as
    each record's own call, its line's newline left out, over records of
    several shapes, repeated ones and undecodable bytes (a JSON shape's
    text checked)."""
    recs = [dict(OPEN), dict(OPEN, fd=-1), dict(OPEN, path=None), dict(OPEN),
            dict(OPEN, path=kstr(b"/tmp/\xff\xfe\0")), dict(OPEN, fd=True), dict(OPEN)]
    lines = ["line %d\n" % (i % 2) if i % 3 else "line %d" % (i % 2) for i in range(len(recs))]
    one = make("opensnoop")
    expected = [one(dict(r), line.rstrip("\n"), observed) for r, line in zip(recs, lines)]
    enc = make("opensnoop")
    assert enc.all([(dict(r), line) for r, line in zip(recs, lines)], observed) == expected
    by_event = otlp.ByEvent({"open": "opensnoop"}, make)
    assert by_event.all([(dict(r, event="open"), line) for r, line in zip(recs, lines)],
                        observed) == [one(dict(r, event="open"), line.rstrip("\n"), observed)
                                      for r, line in zip(recs, lines)]


def test_a_shape_times_each_record_as_json_does_across_seconds():
    """A shape keeps the start of the last record's second between records:
    records of several seconds, back and forth, a time just short of the
    next second, and a tie of the microseconds (ties to even, as "%.6f"),
    each exact in both encodings."""
    base = 1795811805.0                 # its fractions are multiples of 2**-22
    tie = 32768 * pow(15625, -1, 65536) % 65536 / 2 ** 22     # its microseconds end in .5
    assert (tie * 1e6) % 1 == 0.5
    times = [base + 0.25, base + 0.9999996, base + 1.0000004, base + 0.5, base + tie,
             base + 1 + tie, base + 7.75, base - 0.125, base + 0.25]
    recs = [dict(OPEN, ts=ts) for ts in times]
    expected = [int(("%.6f" % ts).replace(".", "")) * 1000 for ts in times]
    for make, observed in ((otlp.Encoder, "1"), (otlp.ProtoEncoder, otlp.pb_observed(1))):
        enc = make("opensnoop")
        out = enc.all([(r, LINE + "\n") for r in recs], observed)
        msg = request("opensnoop", *out) if make is otlp.Encoder else \
            parse(gzip.compress(otlp.Protobuf("opensnoop").body(out)))
        assert [r.time_unix_nano for r in records_of(msg)] == expected
        assert len(enc._shapes) == 1


OPEN_COLUMNS = [Column("PID", "pid", -6), Column("COMM", "comm", -16), Column("FD", "fd", 4),
                Column("ERR", "err", 3), Column("PATH", "path")]


@pytest.mark.parametrize("make,observed", [(otlp.Encoder, "1"),
                                           (otlp.ProtoEncoder, otlp.pb_observed(1))])
def test_lines_made_from_the_values_are_the_writers_lines(make, observed):
    """--otlp-only, where a writer's lines are made of their records' values
    (lines_from()): a record comes without its line, and the encoder makes
    it only for values it has not kept, the very line the writer makes, over
    repeated values, other shapes (one for the generic encoder: an int past
    int64) and undecodable bytes."""
    writer = TextWriter(OPEN_COLUMNS, sink=None)
    assert writer.of_values
    made = []

    def line_of(rec):
        made.append(rec["fd"])
        return writer.text(rec)
    recs = [dict(OPEN, ts=OPEN["ts"] + i / 7, fd=i % 3) for i in range(30)]
    recs += [dict(OPEN, fd=-1, err=2), dict(OPEN, path=kstr(b"/tmp/\xff\0")),
             dict(OPEN, extra=1 << 70), dict(OPEN, fd=True), dict(OPEN, fd=2)]
    expected = make("opensnoop").all([(dict(r), writer.text(r)) for r in recs], observed)
    enc = make("opensnoop")
    assert enc.lines_from(line_of)
    assert enc.all([(dict(r), None) for r in recs], observed) == expected
    # the 30 records' three values, once each, then each other record's
    # (fd=2's kept); an int past int64 can take two (its shape, generic)
    assert made[:5] == [0, 1, 2, -1, 3] and made[-1] is True and made.count(2) == 1
    assert not otlp.ByEvent({"open": "opensnoop"}, make).lines_from(line_of)


def test_a_writer_says_whether_its_lines_are_made_of_the_values_alone():
    assert TextWriter(OPEN_COLUMNS, None).of_values
    for other in (Column("TIME(s)", "ts", -11, "%.6f".__mod__),     # the time
                  Column("MODE", None, -4, lambda rec: "n/a"),      # a whole record
                  Column("CONTAINER", "cgroup_id", -16, str, live=True)):   # a name found later
        assert not TextWriter(OPEN_COLUMNS[:2] + [other], None).of_values
    assert not TextWriter(OPEN_COLUMNS, None, rows=lambda rec: [rec]).of_values


def test_a_collectors_protobuf_answer_is_read():
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsPartialSuccess, ExportLogsServiceResponse)
    answer = ExportLogsServiceResponse(partial_success=ExportLogsPartialSuccess(
        rejected_log_records=3, error_message="too old \u00e9"))
    assert otlp.Protobuf.partial_success(answer.SerializeToString()) == (3, "too old \u00e9")
    assert otlp.Protobuf.partial_success(ExportLogsServiceResponse().SerializeToString()) == \
        (0, "")
    assert otlp.Protobuf.partial_success(b'{"partialSuccess":{"rejectedLogRecords":"2"}}') == \
        (2, "")
    assert otlp.Protobuf.partial_success(b"\xff\xff") == (0, "")      # none we read


def test_record_time_is_the_microseconds_json_shows():
    for _ in range(20000):
        ts = random.uniform(1.0e9, 2.1e9)
        assert otlp.time_text(ts) == ("%.6f" % ts).replace(".", "") + "000"
    assert otlp.time_text(1700000000.9999996) == "1700000001000000000"


# -- where to, with what ------------------------------------------------------------
def test_command_line_urls():
    assert otlp.cli_url("collector") == "http://collector:4318/v1/logs"
    assert otlp.cli_url("collector:9000") == "http://collector:9000/v1/logs"
    assert otlp.cli_url("https://otlp.example.com") == "https://otlp.example.com:4318/v1/logs"
    assert otlp.cli_url("https://h:443/otlp/") == "https://h:443/otlp/v1/logs"
    assert otlp.cli_url("http://h:4318/v1/logs") == "http://h:4318/v1/logs"
    assert otlp.cli_url("[::1]") == "http://[::1]:4318/v1/logs"
    for bad in ("ftp://h", "http://h:port", "http://"):
        with pytest.raises(ValueError):
            otlp.cli_url(bad)


def cfg(otlp_arg="", headers=(), **environ):
    return otlp.config(argparse.Namespace(otlp=otlp_arg, otlp_header=list(headers)), environ)


def test_the_environment_as_the_otel_sdks_read_it():
    assert cfg().url == "http://localhost:4318/v1/logs"
    # the generic endpoint gets v1/logs appended to its path; the logs one is used as it is
    assert cfg(OTEL_EXPORTER_OTLP_ENDPOINT="http://c:4318").url == "http://c:4318/v1/logs"
    assert cfg(OTEL_EXPORTER_OTLP_ENDPOINT="https://c/base/").url == "https://c/base/v1/logs"
    both = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://l:1234/custom"}
    assert cfg(**both).url == "http://l:1234/custom"
    assert cfg("http://cli:4318/v1/logs", **both).url == "http://cli:4318/v1/logs"
    c = cfg(headers=[("x-b", "cli")],
            OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%20tok , x-a=1,x-b=env",
            OTEL_EXPORTER_OTLP_LOGS_HEADERS="x-a=2", OTEL_EXPORTER_OTLP_TIMEOUT="2500",
            OTEL_EXPORTER_OTLP_COMPRESSION="none")
    assert c.headers == {"Authorization": "Bearer tok", "x-a": "2", "x-b": "cli"}
    assert c.timeout == 2.5 and not c.gzip


@pytest.mark.parametrize("environ,message", [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://c"}, "OTEL_EXPORTER_OTLP_ENDPOINT: invalid URL"),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS: invalid header"),
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}, "not milliseconds"),
])
def test_a_bad_environment_is_one_clear_error(environ, message):
    with pytest.raises(SnoopError, match=message):
        cfg(**environ)


def test_the_protocol_as_the_otel_sdks_choose_it():
    assert cfg().wire is otlp.Protobuf            # their default: http/protobuf
    assert cfg(OTEL_EXPORTER_OTLP_PROTOCOL="http/json").wire is otlp.Json
    assert cfg(OTEL_EXPORTER_OTLP_PROTOCOL="http/json",
               OTEL_EXPORTER_OTLP_LOGS_PROTOCOL="http/protobuf").wire is otlp.Protobuf
    with pytest.raises(SnoopError, match="'grpc' is not http/protobuf or http/json"):
        cfg(OTEL_EXPORTER_OTLP_PROTOCOL="grpc")
    for wire, content_type in ((otlp.Json, "application/json"),
                               (otlp.Protobuf, "application/x-protobuf")):
        c = cfg("http://c:4318")
        c.wire = wire
        assert otlp.Http(c).headers["Content-Type"] == content_type


def test_headers_from_the_command_line():
    assert otlp.cli_header("Authorization=Bearer x=y") == ("Authorization", "Bearer x=y")
    for bad in ("novalue", "=v", "a b=c", "k=\u20ac"):
        with pytest.raises(ValueError):
            otlp.cli_header(bad)


# -- the exporter, step by step -------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Collector:
    """A fake transport: answers[i] is the i-th request's (status, Retry-After,
    body), or an exception; then 200. Keeps each request's records."""

    url = "http://collector:4318/v1/logs"

    def __init__(self, *answers):
        self.answers, self.requests, self.delivered = list(answers), [], []

    def post(self, data):
        msg = parse(data)
        self.requests.append(len(records_of(msg)))
        answer = self.answers.pop(0) if self.answers else (200, None, b"{}")
        if isinstance(answer, Exception):
            raise answer
        status, retry_after, body = answer
        if status == 200:
            self.delivered += [value(r.body) for r in records_of(msg)]
        return status, "Reason", retry_after, body


def exporter(collector, monkeypatch, batch=4, wire=otlp.Json):
    monkeypatch.setattr(otlp, "BATCH_RECORDS", batch)
    monkeypatch.setattr(otlp, "MAX_AGE_SECONDS", 0.25)     # exact in binary, as the clock's sums
    clock = Clock()
    ex = otlp.Exporter("opensnoop", collector, clock=clock, wire=wire)
    return ex, clock


def encode(ex):
    """The encoder's steps until it has nothing left to do at once."""
    while True:
        wait = ex.encode_step()
        if wait != 0:
            return wait


def drain(ex, lines):
    """What the poll loop does for one drain of these events."""
    for line in lines:
        ex.add((dict(OPEN), line))
    ex.flush()


def test_batches_by_count_then_by_age(monkeypatch):
    c = Collector()
    ex, clock = exporter(c, monkeypatch)
    drain(ex, ["e%d" % i for i in range(6)])
    assert encode(ex) == pytest.approx(otlp.MAX_AGE_SECONDS)  # 4 batched, 2 wait
    assert ex.send_step() == 0 and c.requests == [4]
    assert ex.send_step() is None
    clock.now += otlp.MAX_AGE_SECONDS / 2
    drain(ex, ["e6"])
    assert encode(ex) == pytest.approx(otlp.MAX_AGE_SECONDS / 2)
    assert ex.send_step() is None               # too young to go alone
    clock.now += otlp.MAX_AGE_SECONDS / 2
    assert encode(ex) is None
    assert ex.send_step() == 0 and c.requests == [4, 3]
    assert c.delivered == ["e%d" % i for i in range(7)]
    assert (ex.delivered, ex.dropped, ex.pending()) == (7, 0, 0)


def test_records_wait_for_their_drains_time_mark(monkeypatch):
    c = Collector()
    ex, clock = exporter(c, monkeypatch, batch=2)
    ex.add((dict(OPEN), "a\n"))               # a drain under way: no mark yet
    assert encode(ex) is None and ex.ready == [] and ex.pending() == 1
    ex.add((dict(OPEN), "b\n"))
    ex.flush()
    encode(ex)
    ex.send_step()
    assert c.delivered == ["a", "b"]            # the text line's newline is no part of the body


def test_a_drain_whose_events_the_encoder_took_before_its_mark_still_gets_one(monkeypatch):
    # the encoder wakes on its own (a batch's age) in the middle of a drain
    # and takes every event so far: the drain's flush finds nothing waiting,
    # and must mark them all the same, or they wait for the next drain's mark
    c = Collector()
    ex, clock = exporter(c, monkeypatch)
    drain(ex, ["a"])
    encode(ex)
    ex.add((dict(OPEN), "b"))
    ex.add((dict(OPEN), "c"))
    assert ex.encode_step() == pytest.approx(otlp.MAX_AGE_SECONDS) and not ex.waiting
    ex.flush()
    assert list(ex.waiting) != []
    clock.now += otlp.MAX_AGE_SECONDS
    assert encode(ex) is None
    assert ex.send_step() == 0 and c.delivered == ["a", "b", "c"]
    assert (ex.delivered, ex.pending()) == (3, 0)
    ex.flush()                                  # a drain with no events: no mark
    assert not ex.waiting


def test_503_and_connection_errors_are_retried_with_backoff_until_delivered(monkeypatch):
    c = Collector((503, None, b"busy"), otlp.Failure("connection refused"),
                  (429, "3", b""), (200, None, b"{}"))
    ex, clock = exporter(c, monkeypatch)
    monkeypatch.setattr(otlp.random, "uniform", lambda a, b: 1.0)
    drain(ex, ["a", "b", "c", "d"])
    encode(ex)
    waits = []
    for _ in range(3):
        assert ex.send_step() == 0
        waits.append(ex.send_step())
        clock.now += waits[-1]
    assert waits == [0.25, 0.5, 3.0]            # doubling, then the collector's Retry-After
    assert ex.trouble == "HTTP 429 Reason"
    assert ex.news() == ([], "otlp: %s: HTTP 429 Reason; retrying" % c.url)
    assert ex.send_step() == 0
    assert c.requests == [4, 4, 4, 4] and c.delivered == ["a", "b", "c", "d"]
    assert (ex.delivered, ex.dropped, ex.trouble) == (4, 0, "")
    assert ex.news() == ([], "otlp: %s: delivering again" % c.url)


@pytest.mark.parametrize("wire", [otlp.Json, otlp.Protobuf])
def test_a_request_refused_for_good_is_dropped_counted_and_said(monkeypatch, wire):
    c = Collector((400, None, b'{"message": "bad\\nthing"}'),
                  (200, None, b'{"partialSuccess":{"rejectedLogRecords":"1",'
                              b'"errorMessage":"too old"}}'))
    ex, clock = exporter(c, monkeypatch, batch=2, wire=wire)
    drain(ex, ["a", "b", "c", "d"])
    encode(ex)
    ex.send_step()
    assert ex.news() == (["2 events not exported: HTTP 400 Reason from %s: "
                          '{"message": "bad\\nthing"}' % c.url], None)
    ex.send_step()
    assert (ex.delivered, ex.dropped, ex.pending()) == (1, 3, 0)
    assert ex.news() == (["1 events not exported: the collector rejected them: too old"], None)


def test_memory_is_bounded_and_what_does_not_fit_is_counted(monkeypatch):
    c = Collector()
    ex, clock = exporter(c, monkeypatch, batch=2)
    monkeypatch.setattr(otlp, "MAX_WAITING", 5)
    drain(ex, ["w%d" % i for i in range(8)])    # 3 more than may wait
    assert ex.dropped == 3 and "fell behind" in ex.why
    monkeypatch.setattr(otlp, "MAX_QUEUED_BYTES", 1)    # the collector took nothing yet
    encode(ex)
    assert len(ex.batches) == 1 and ex.dropped == 3 + 2     # one batch queued, the next dropped
    assert "did not keep up" in ex.why
    assert ex.pending() == 2 + 1                # the queued batch, and one waiting for its pair
    clock.now += otlp.MAX_AGE_SECONDS
    encode(ex)
    ex.send_step()
    assert c.delivered == ["w0", "w1"]


def test_close_counts_exactly_what_the_collector_did_not_take(monkeypatch):
    c = Collector(*[otlp.Failure("connection refused")] * 100)
    ex, clock = exporter(c, monkeypatch)
    drain(ex, ["x%d" % i for i in range(6)])
    encode(ex)
    ex.send_step()
    ex.add((dict(OPEN), "late"))                # read in the final drain
    ex.close(give_up_at=0)                      # the stop's wait is over
    assert (ex.delivered, ex.dropped) == (0, 7)
    assert ex.news() == (["7 events not exported: the collector at %s did not take them "
                          "within 5 s of the stop (connection refused)" % c.url],
                         "otlp: %s: connection refused; retrying" % c.url)


def test_a_failing_step_drops_what_it_held_and_says_why(monkeypatch):
    c = Collector()
    ex, clock = exporter(c, monkeypatch)

    class Broken:
        def all(self, items, observed):
            raise RuntimeError("boom")
    ex.encode = Broken()
    drain(ex, ["a", "b"])
    with pytest.raises(RuntimeError) as e:
        ex.encode_step()
    ex._failed(ex.encode_step, e.value)         # what the thread does with it
    assert (ex.dropped, ex.pending()) == (2, 0) and ex.why == "export failed: RuntimeError: boom"


@pytest.mark.parametrize("wire", [otlp.Json, otlp.Protobuf])
@pytest.mark.parametrize("compress", [True, False])
def test_a_body_made_in_pieces_is_one_request(monkeypatch, wire, compress):
    """A batch's body is made (and gzipped) PIECE_RECORDS at a time: a
    batch of a piece and a part, of one record, and of exactly two pieces,
    each one valid request of its records in order."""
    monkeypatch.setattr(otlp, "PIECE_RECORDS", 4)
    for n in (6, 1, 8):
        c = Collector()
        ex, clock = exporter(c, monkeypatch, batch=n, wire=wire)
        ex.gzip = compress
        if not compress:
            c.post = lambda data, post=c.post: post(gzip.compress(data))
        drain(ex, ["p%d" % i for i in range(n)])
        encode(ex)
        assert ex.send_step() == 0
        assert c.requests == [n] and c.delivered == ["p%d" % i for i in range(n)]
    assert otlp.Json("opensnoop").body([]) == "".join(otlp.request_parts("opensnoop")).encode()


@pytest.mark.parametrize("wire", [otlp.Json, otlp.Protobuf])
def test_the_threads_deliver_everything_before_close_returns(wire):
    c = Collector((503, None, b""))
    ex = otlp.Exporter("opensnoop", c, wire=wire)
    ex.start()
    for n in range(3):
        drain(ex, ["t%d.%d" % (n, i) for i in range(1000)])
    ex.close(time.monotonic() + 10)
    assert (ex.delivered, ex.dropped) == (3000, 0)
    assert sorted(c.delivered) == sorted("t%d.%d" % (n, i) for n in range(3) for i in range(1000))
    assert c.requests[0] == c.requests[1]       # the one refused, then sent again


def test_a_tool_without_otlp_imports_nothing_of_it():
    import subprocess
    import sys
    from helpers import ROOT
    code = ("import sys, importlib.machinery, importlib.util\n"
            "loader = importlib.machinery.SourceFileLoader('t', %r)\n"
            "m = importlib.util.module_from_spec(importlib.util.spec_from_loader('t', loader))\n"
            "loader.exec_module(m)\n"
            "m.OpenSnoop().parse(sys.argv[1:])\n"
            "print(sorted(n for n in sys.modules if n in ('snooptools.otlp', 'http.client',"
            " 'zlib', 'threading', 'urllib.parse')))\n" % str(ROOT / "tools" / "opensnoop"))
    run = lambda *args: subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                                       text=True, check=True).stdout.strip()
    assert "snooptools.otlp" not in run("--pid", "1", "--json")
    assert "snooptools.otlp" in run("--otlp", "collector")


def test_a_long_drain_hands_its_events_over_as_it_goes(monkeypatch):
    from snooptools import loop
    c = Collector()
    ex, clock = exporter(c, monkeypatch, batch=100)
    ex.FLUSH_EVERY = 4

    class Out:
        @staticmethod
        def write(rec):
            return "line %d\n" % rec["pid"]
    emit = loop.emitter(Out, None, ex, argparse.Namespace(otlp_only=False))
    for pid in range(10):                       # one drain, never ended
        emit(dict(OPEN, pid=pid))
    assert sum(type(x) is int for x in ex.waiting) == 2     # marked twice already
    encode(ex)
    assert len(ex.ready) == 8 and len(ex.chunk) == 2        # the last two wait for a mark
    clock.now += otlp.MAX_AGE_SECONDS
    encode(ex)
    ex.send_step()
    assert c.delivered == ["line %d" % pid for pid in range(8)]


def test_otlp_only_hands_over_records_whose_values_make_their_lines(monkeypatch):
    """With --otlp-only, a writer whose lines are made of the values alone
    makes none in the poll loop: the record goes without its line (the
    summary still counts it), and the body that arrives is the writer's
    line. A writer whose lines show the time makes the line there."""
    from snooptools import loop
    c = Collector()
    ex, clock = exporter(c, monkeypatch, batch=100)
    writer, summary = TextWriter(OPEN_COLUMNS, None), []

    class Summary:
        add = summary.append
    emit = loop.emitter(writer, Summary, ex, argparse.Namespace(otlp_only=True))
    recs = [dict(OPEN, pid=pid) for pid in (1, 2, 1)]
    for rec in recs:
        emit(rec)
    assert list(ex.waiting) == [(rec, None) for rec in recs] and summary == recs
    ex.flush()
    encode(ex)
    clock.now += otlp.MAX_AGE_SECONDS
    encode(ex)
    ex.send_step()
    assert c.delivered == [writer.text(rec)[:-1] for rec in recs]

    timed = TextWriter([Column("TIME(s)", "ts", -11, "%.6f".__mod__)] + OPEN_COLUMNS, None)
    ex, clock = exporter(Collector(), monkeypatch)
    loop.emitter(timed, None, ex, argparse.Namespace(otlp_only=True))(dict(OPEN))
    assert list(ex.waiting) == [(OPEN, timed.text(OPEN))]
