"""--otlp: each event as an OTLP log record, sent over OTLP/HTTP (protobuf,
or JSON with OTEL_EXPORTER_OTLP_PROTOCOL=http/json; gzip) to an
OpenTelemetry Collector by threads beside the poll loop. Imported only when
--otlp is given.

    the poll loop      add((rec, line)) per event: one append to a deque;
                       flush() after each drain: a time mark, a wake-up
    the export thread  encodes the records (a function made per record
                       shape, as output.py does for --json), cuts batches
                       by count (BATCH_RECORDS) and by age (MAX_AGE_SECONDS),
                       gzips them and POSTs them one at a time, retrying
                       with backoff on 429/502/503/504 and on connection
                       errors
    at the stop        close(): what is queued goes out within the stop's
                       bounded wait (sink.STOP_WAIT_SECONDS); the rest is
                       counted, as kernel-side losses are

Memory is bounded: past MAX_WAITING records waiting to be encoded, or
MAX_QUEUED_BYTES of batches waiting for the collector, new events are
counted as not exported instead of kept. A record's attributes are the
event's JSON keys, named by the OpenTelemetry semantic conventions where one
fits (NAMES) and snoop.<key> elsewhere; its body is the line the tool prints
for the event (text, or JSON with --json).
"""
import collections
import itertools
import json
import os
import random
import struct
import threading
import time
import zlib
from json.encoder import encode_basestring

from . import __version__, codegen, sink
from .errors import SnoopError
from .output import is_utf8, json_safe

DEFAULT_PORT = 4318
LOGS_PATH = "/v1/logs"
BATCH_RECORDS = 4096        # records per request at most
MAX_AGE_SECONDS = 0.2       # longest a record waits for its batch to fill
MAX_WAITING = 65536         # records read but not yet encoded, at most
MAX_QUEUED_BYTES = 16 << 20     # gzipped batches waiting for the collector, at most
# A request's body is made (and gzipped) this many records at a time: a
# whole batch's text in one piece (a megabyte or three) is memory mapped
# afresh for each batch, and touching its pages cost more here than
# joining and encoding the text (4096 JSON records: 1,500 page faults and
# 1.2 µs per record; in pieces of 256, 1 fault and 0.2 µs)
PIECE_RECORDS = 256
TIMEOUT_SECONDS = 10.0      # one request (OTEL_EXPORTER_OTLP_TIMEOUT)
FIRST_BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 8.0
MAX_RETRY_AFTER_SECONDS = 30.0
RETRYABLE = (429, 502, 503, 504)    # the OTLP/HTTP specification's
INT64 = 1 << 63             # an int64 is in [-INT64, INT64)

# An event's JSON key -> its attribute's name under the OpenTelemetry
# semantic conventions, where one means what the key means in every tool
# that has it; TOOL_NAMES: names for keys that mean it in one tool only
# (bindsnoop's addr is the address bound, syncsnoop's a memory address).
# A name with a function: the convention wants the value in another form.
# Every other key is snoop.<key>; ts is the record's time, no attribute.
NAMES = {
    "pid": "process.pid",
    "tid": "thread.id",
    "vpid": "process.vpid",
    "ppid": "process.parent_pid",
    "uid": "process.real_user.id",      # the task's cred->uid: its real uid
    "comm": "process.executable.name",
    "container_id": "container.id",
    "container_name": "container.name",
    "container_runtime": "container.runtime.name",
    "pod": "k8s.pod.name",
    "namespace": "k8s.namespace.name",
    "pod_uid": "k8s.pod.uid",
    "event": "event.name",              # snoop's: the tool that saw the event
}
TOOL_NAMES = {
    "execsnoop": {"args": "process.command_args", "cpu": "cpu.logical_number"},
    "exitsnoop": {"exit_code": "process.exit.code"},
    "opensnoop": {"path": "file.path"},
    "statsnoop": {"path": "file.path"},
    "bindsnoop": {"addr": "network.local.address", "port": "network.local.port",
                  "proto": ("network.transport", str.lower),
                  "ip": ("network.type", "ipv%d".__mod__)},
    "threadsnoop": {"func": "code.function.name"},
}


def attribute(tool, key):
    """(name, convert) of the attribute of key in tool's events; convert is
    None where the value goes as it is."""
    name = TOOL_NAMES.get(tool, {}).get(key) or NAMES.get(key) or "snoop." + key
    return name if isinstance(name, tuple) else (name, None)


# -- where to, and how ----------------------------------------------------------
class Config:
    """The endpoint and request options of one export: the command line's,
    else the environment's as the OpenTelemetry SDKs read it."""

    def __init__(self, url, headers=(), timeout=TIMEOUT_SECONDS, cafile=None, gzip=True,
                 protocol="http/protobuf"):
        self.url, self.headers, self.timeout = url, dict(headers), timeout
        self.cafile, self.gzip = cafile, gzip
        self.wire = WIRES[protocol]


def cli_url(text):
    """--otlp URL: [http://|https://]HOST[:PORT][/PATH], port 4318 unless
    given; the request goes to PATH/v1/logs (PATH as it is when it ends so).
    Raises ValueError with what is wrong."""
    from urllib.parse import urlsplit
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValueError("invalid URL %r: http:// or https:// only" % text)
    try:
        port = parts.port
    except ValueError:
        raise ValueError("invalid port in %r" % text) from None
    if not parts.hostname:
        raise ValueError("invalid URL %r: no host" % text)
    netloc = parts.netloc if port else "%s:%d" % (parts.netloc, DEFAULT_PORT)
    path = parts.path.rstrip("/")
    if not path.endswith(LOGS_PATH):
        path += LOGS_PATH
    return "%s://%s%s" % (parts.scheme, netloc, path)


def cli_header(text):
    """--otlp-header KEY=VALUE, as (key, value). Raises ValueError."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or not key.isascii() or any(c in key for c in " \t:\r\n"):
        raise ValueError("invalid header %r: KEY=VALUE" % text)
    value = value.strip()
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("invalid header %r: HTTP takes Latin-1 values" % text) from None
    if "\r" in value or "\n" in value:
        raise ValueError("invalid header %r: a line break in its value" % text)
    return key, value


def env_url(environ):
    """The logs endpoint the environment names (None: none): the
    signal-specific variable as it is, else the generic one with v1/logs
    appended to its path, as the OTLP exporter specification says."""
    from urllib.parse import urlsplit
    url = environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "").strip()
    name = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"
    if not url:
        base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        if not base:
            return None
        name = "OTEL_EXPORTER_OTLP_ENDPOINT"
        parts = urlsplit(base)
        url = base.replace(parts.path, "", 1) if parts.path else base
        url = url.rstrip("/") + parts.path.rstrip("/") + LOGS_PATH
    parts = urlsplit(url)
    try:
        parts.port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise SnoopError("%s: invalid URL %r" % (name, url), "an http:// or https:// URL")
    return url


def env_headers(environ):
    """The headers of OTEL_EXPORTER_OTLP_HEADERS, then those of
    OTEL_EXPORTER_OTLP_LOGS_HEADERS over them: comma-separated KEY=VALUE,
    values percent-encoded."""
    from urllib.parse import unquote
    headers = {}
    for name in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_LOGS_HEADERS"):
        for item in environ.get(name, "").split(","):
            if not item.strip():
                continue
            try:
                key, value = cli_header(item)
            except ValueError:
                raise SnoopError("%s: invalid header %r" % (name, item.strip()),
                                 "KEY=VALUE, comma-separated, values percent-encoded") from None
            headers[key] = unquote(value)
    return headers


def config(args, environ=os.environ):
    """The Config of --otlp [URL] and --otlp-header, over the environment's."""
    def env(name):
        return environ.get("OTEL_EXPORTER_OTLP_LOGS_" + name) or \
            environ.get("OTEL_EXPORTER_OTLP_" + name)
    url = args.otlp or env_url(environ) or "http://localhost:%d%s" % (DEFAULT_PORT, LOGS_PATH)
    headers = env_headers(environ)
    headers.update(args.otlp_header or ())
    timeout = TIMEOUT_SECONDS
    if env("TIMEOUT"):
        try:
            timeout = int(env("TIMEOUT")) / 1000
        except ValueError:
            raise SnoopError("OTEL_EXPORTER_OTLP_TIMEOUT: not milliseconds: %r"
                             % env("TIMEOUT")) from None
    compression = (env("COMPRESSION") or "gzip").strip().lower()
    if compression not in ("gzip", "none"):
        raise SnoopError("OTEL_EXPORTER_OTLP_COMPRESSION: %r is not gzip or none" % compression)
    protocol = (env("PROTOCOL") or "http/protobuf").strip().lower()
    if protocol not in WIRES:
        raise SnoopError("OTEL_EXPORTER_OTLP_PROTOCOL: %r is not http/protobuf or http/json"
                         % protocol, "OTLP over gRPC is not spoken here")
    return Config(url, headers, timeout, env("CERTIFICATE"), compression == "gzip", protocol)


# -- the records ----------------------------------------------------------------
def resource_attributes(tool):
    """The resource's attributes, (name, str): the host and the tool."""
    import socket
    attrs = [("service.name", tool), ("service.version", __version__),
             ("host.name", socket.gethostname())]
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path) as f:
                machine = f.read().strip()
        except OSError:
            continue
        if machine:
            attrs.append(("host.id", machine))
            break
    return attrs


def resource(tool):
    """The JSON of the resource."""
    return json.dumps({"attributes": [{"key": k, "value": {"stringValue": v}}
                                      for k, v in resource_attributes(tool)]},
                      separators=(",", ":"))


def request_parts(tool):
    """The text of a request body before and after its records."""
    scope = json.dumps({"name": "snooptools", "version": __version__}, separators=(",", ":"))
    return ('{"resourceLogs":[{"resource":%s,"scopeLogs":[{"scope":%s,"logRecords":['
            % (resource(tool), scope), "]}]}]}")


def any_value(v):
    """The AnyValue (as a dict) of one raw value."""
    kind = type(v)
    if kind is bool:
        return {"boolValue": v}
    if kind is int:
        if -INT64 <= v < INT64:
            return {"intValue": str(v)}
        return {"stringValue": str(v)}      # past int64: as pb_int() does
    if kind is float:
        if v != v or v in (float("inf"), float("-inf")):
            return {"stringValue": repr(v)}     # JSON has no NaN; OTLP's double would
        return {"doubleValue": v}
    if kind is str:
        return {"stringValue": json_safe(v)}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [any_value(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": [{"key": str(k), "value": any_value(x)}
                                           for k, x in v.items()]}}
    if isinstance(v, bytes):
        import base64
        return {"bytesValue": base64.b64encode(v).decode()}
    return {"stringValue": json_safe(str(v))}


def _array(v):
    return json.dumps(any_value(v), ensure_ascii=False, separators=(",", ":"))


class Encoder:
    """(rec, line, observed) -> the JSON text of its LogRecord. Like
    output.JsonWriter, one function per record shape (the same keys, a value
    of the same type under each), the last that served tried first, and
    past SHAPES of them a generic encoder for the rest. A line is the
    record's body, or the line a writer made of it: its newline is left
    out; or None, where lines_from() gave the writer's function: a shape
    makes the line of a record whose values it has not kept."""

    SHAPES = 16
    CACHED = 1024           # records' texts kept per shape (_shape)

    def __init__(self, tool):
        self.tool = tool
        self._shapes = []
        self._names = {}
        self.line_of = None

    def lines_from(self, line_of):
        """Make each record's line with line_of(rec) where it comes as
        None: a writer whose lines are made of their records' values, the
        time aside (output.TextWriter.of_values). A line made per event is
        a fifth of what the poll loop spends on an opensnoop event (1.2 of
        5.3 µs here); this makes it once per values kept (CACHED). True:
        done."""
        self.line_of = line_of
        return True

    def __call__(self, rec, line, observed):
        out = []
        self._one(rec, line, observed, out.append)
        return out[0]

    def all(self, items, observed):
        """[self(rec, line, observed) for each (rec, line) of items]: the
        exporter's, a drain's records at a time. The shape that served last
        runs through them until a record it does not fit (its loop is made
        with it: no call per record), that record goes the way __call__
        takes, and so on."""
        out = []
        add, shapes, i, n = out.append, self._shapes, 0, len(items)
        while i < n:
            if shapes:
                i = shapes[0](items, i, observed, add)
                if i == n:
                    break
            rec, line = items[i]
            self._one(rec, line, observed, add)
            i += 1
        return out

    def _one(self, rec, line, observed, add):
        """add() the encoding of one record: by the first shape it fits,
        which then comes first; by a new shape; else by generic()."""
        item, shapes = ((rec, line),), self._shapes
        for i, shape in enumerate(shapes):
            if shape(item, 0, observed, add):
                if i:
                    shapes.insert(0, shapes.pop(i))
                return
        if len(shapes) < self.SHAPES:
            shapes.insert(0, self._shape(rec))
            if shapes[0](item, 0, observed, add):
                return
        if line is None:
            line = self.line_of(rec)
        add(self.generic(rec, line[:-1] if line[-1:] == "\n" else line, observed))

    def name(self, key):
        n = self._names.get(key)
        if n is None:
            n = self._names[key] = attribute(self.tool, key)
        return n

    def generic(self, rec, line, observed):
        attrs = []
        for key, value in rec.items():
            if key == "ts" or value is None:
                continue
            name, convert = self.name(key)
            attrs.append({"key": name, "value": any_value(convert(value) if convert else value)})
        obj = {"timeUnixNano": time_text(rec.get("ts")), "observedTimeUnixNano": observed,
               "body": {"stringValue": json_safe(line)}, "attributes": attrs}
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    def _shape(self, rec):
        """The encoder of records shaped like rec, as encode(items, i,
        observed, add): add() the encodings of items[i:] until one of
        another shape (which it returns the index of, never encoding a
        record wrong); len(items) at the end. Straight-line code per record
        that checks each value's type and makes what follows the times with
        the attribute names already in it (_value(), _rest()).

        Events at a high rate mostly repeat one another but for their time
        (a loop opening one file, a daemon's same call): what follows the
        times (body and attributes) is kept for the last CACHED records'
        values, where they are all ints, bools, strings or None (a float's
        0.0 and -0.0 would be one key, a list no key). A line's newline is
        left out only when it is made (the key has the line as it came:
        None, where the values make it)."""
        env = dict(self._env(), cache={}, CACHED=self.CACHED, inf=float("inf"),
                   islice=itertools.islice, generic=self.generic, is_utf8=is_utf8,
                   enc=self)
        loads, checks, parts = [], [], []
        keys = ["line"]
        cacheable = True
        for i, (key, value) in enumerate(rec.items()):
            if key == "ts":
                continue
            v = "v%d" % i
            loads.append("%s = r[%r]" % (v, key))
            keys.append(v)
            if value is None:
                checks.append("%s is None" % v)
                continue
            name, convert = self.name(key)
            if convert:
                env["c%d" % i] = convert
                checks.append("type(%s) is %s" % (v, type(value).__name__))
                value = convert(value)
                v = "c%d(%s)" % (i, v)
            kind = type(value)
            if kind not in (bool, int, float, str, list):
                return lambda items, i, observed, add: i
            cacheable = cacheable and kind not in (float, list)
            check, part = self._value(i, name, kind, v, env)
            checks += [check] if check else []
            parts.append(part)
        # what follows the times: made (a value the shape cannot encode, an
        # int past int64, is a TypeError: another shape's record), checked
        make = ("if line is None:\n"
                "    line = enc.line_of(r)\n"
                "body = line[:-1] if line[-1:] == '\\n' else line\n"
                "try:\n"
                "    got = %s\n"
                "except TypeError:\n"
                "    return i\n%s") % (self._rest(parts, env), self.CHECK)
        if cacheable:
            make = ("key = (%s,)\n"
                    "got = cache.get(key)\n"
                    "if got is None:\n"
                    "%s"
                    "    if len(cache) >= CACHED:\n"
                    "        cache.clear()\n"
                    "    cache[key] = got\n") % (", ".join(keys), codegen.indent(make, 1))
        src = ("def encode(items, i, observed, add):\n"
               "    lo, ns = inf, 0\n"
               "    for r, line in islice(items, i, None):\n"
               "        if len(r) != %d:\n"
               "            return i\n"
               "        try:\n"
               "            ts = r['ts']\n"
               "%s"
               "        except KeyError:\n"
               "            return i\n"
               "        if not (type(ts) is float and %s):\n"
               "            return i\n"
               # the time: ns is where the last record's second starts, made
               # again for a record of another; the microseconds as time_ns()
               # rounds them (ns + 10**9 where they round up to a second)
               "        f = ts - lo\n"
               "        if not 0.0 <= f < 1.0:\n"
               "            s = int(ts)\n"
               "            lo, ns = float(s) if s >= 0 else inf, s * 1000000000\n"
               "            f = ts - s\n"
               "        t = ns + round(f * 1e6) * 1000\n"
               "%s"
               "        add(%s)\n"
               "        i += 1\n"
               "    return i\n") % (len(rec), codegen.indent("\n".join(loads), 3),
                                    " and ".join(checks) or "True", codegen.indent(make, 2),
                                    self.RECORD)
        return codegen.function("encode", src, env, "%s of records of %s"
                                % (self.WHAT, ", ".join(rec)))

    # -- what _shape() makes for JSON --------------------------------------------
    WHAT = "OTLP"
    # the record: the times, then what follows them (got, the cached text)
    RECORD = "times % (t, observed) + got"
    # text that UTF-8 cannot carry (undecodable bytes in some string): the
    # generic encoder's, which replaces them
    CHECK = ("if not got.isascii() and not is_utf8(got):\n"
             "    add(generic(r, body, observed))\n"
             "    i += 1\n"
             "    continue\n")

    def _env(self):
        return {"text": encode_basestring, "array": _array,
                "times": '{"timeUnixNano":"%d","observedTimeUnixNano":"%s",'}

    def _value(self, i, name, kind, v, env):
        """(the check of value v of kind, other than its shape's; its part
        of what follows the times): here (the template's piece with the
        attribute's name, the expression of its value)."""
        if kind is bool:
            check, spec, value = "type(%s) is bool" % v, '{"boolValue":%s}', \
                '("true" if %s else "false")' % v
        elif kind is int:
            check, spec, value = "type(%s) is int and %d <= %s < %d" % (v, -INT64, v, INT64), \
                '{"intValue":"%d"}', v
        elif kind is float:
            check, spec, value = "type(%s) is float and -inf < %s < inf" % (v, v), \
                '{"doubleValue":%r}', v
        elif kind is str:
            check, spec, value = None, '{"stringValue":%s}', "text(%s)" % v  # text() checks str
        else:
            check, spec, value = "type(%s) is list" % v, "%s", "array(%s)" % v
        return check, ('{"key":%s,"value":%s}' % (encode_basestring(name).replace("%", "%%"),
                                                  spec), value)

    def _rest(self, parts, env):
        """The expression of what follows the times, of the parts _value() made."""
        env["rest"] = '"body":{"stringValue":%s},"attributes":[' + \
            ",".join(spec for spec, _ in parts) + "]}"
        return "rest %% (text(body), %s)" % "".join(value + ", " for _, value in parts)


class ByEvent:
    """snoop's encoder: each record encoded as its tool's events are (its
    attributes named for that tool), the tool named by the record's event;
    make: the encoder of one tool's (Encoder, ProtoEncoder)."""

    def __init__(self, tools, make=None):
        make = make or Encoder
        self.encoders = {event: make(tool) for event, tool in tools.items()}

    def __call__(self, rec, line, observed):
        return self.encoders[rec["event"]](rec, line, observed)

    @staticmethod
    def lines_from(line_of):
        return False        # each tool's line comes from its own writer

    def all(self, items, observed):
        """As Encoder.all(): each run of one tool's records by its encoder."""
        out = []
        for event, run in itertools.groupby(items, _event):
            out += self.encoders[event].all(list(run), observed)
        return out


def _event(item):
    return item[0]["event"]


def time_text(ts):
    """timeUnixNano of an event's ts (Unix seconds): the microseconds that
    --json shows ("%.6f"), exactly. The fraction of a second is exact in a
    double, and its microseconds are rounded as "%.6f" rounds them (ties
    to even), to a nanosecond there: the shape encoders' arithmetic."""
    return str(time_ns(ts))


def time_ns(ts):
    """time_text()'s nanoseconds, as an int (protobuf's fixed64)."""
    if not isinstance(ts, (int, float)):
        return 0
    s = int(ts)
    us = round((ts - s) * 1e6)
    return (s + 1) * 1000000000 if us == 1000000 else s * 1000000000 + us * 1000


# -- protobuf -------------------------------------------------------------------
# OTLP/HTTP's other encoding, and the OpenTelemetry SDKs' default
# (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf): the same messages in
# protobuf's binary form, written here field by field (opentelemetry-proto's
# logs.proto and common.proto give the numbers). Fields go in their
# numbers' order, as protobuf itself writes them, so a body parsed and
# written again is the same bytes (the tests check it so). Half the bytes
# of the JSON: half the gzip, on the one CPU the export shares with the
# poll loop.
_SMALL = [bytes((n,)) for n in range(128)]
_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack


def varint(n):
    """A non-negative int as a protobuf varint."""
    if n < 128:
        return _SMALL[n]
    if n < 16384:               # two bytes: the length of most fields and records
        return bytes((n & 127 | 128, n >> 7))
    out = bytearray()
    while n > 127:
        out.append(n & 127 | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(tag, payload):
    """A length-delimited field: its tag byte (number << 3 | 2), length,
    payload."""
    return _SMALL[tag] + varint(len(payload)) + payload


def pb_int(v):
    """AnyValue's int_value (3, an int64: a negative one in ten bytes, as
    two's complement); None outside int64 (the record then has a string)."""
    if -INT64 <= v < INT64:
        return b"\x18" + varint(v & 0xFFFFFFFFFFFFFFFF)
    return None


def pb_bool(v):
    """AnyValue's bool_value (2)."""
    return b"\x10\x01" if v else b"\x10\x00"


def kept(make, most):
    """(a dict, get): get(value) returns make(value), which it keeps in the
    dict under value (the last most values at most: past that, the dict is
    emptied first)."""
    got = {}

    def get(value):
        data = make(value)
        if len(got) >= most:
            got.clear()
        got[value] = data
        return data
    return got, get


def pb_str(v):
    """AnyValue's string_value (1): UTF-8, undecodable bytes replaced."""
    return field(0x0a, json_safe(v).encode("utf-8"))


def pb_value(v):
    """The AnyValue (its bytes) of one raw value, as any_value() for JSON.
    A float is a double, NaN and infinities too (protobuf has them)."""
    kind = type(v)
    if kind is bool:
        return pb_bool(v)
    if kind is int:
        return pb_int(v) or pb_str(str(v))
    if kind is float:
        return b"\x21" + _DOUBLE(v)
    if kind is str:
        return pb_str(v)
    if isinstance(v, (list, tuple)):
        return field(0x2a, b"".join(field(0x0a, pb_value(x)) for x in v))
    if isinstance(v, dict):
        return field(0x32, b"".join(field(0x0a, pb_pair(str(k), pb_value(x)))
                                    for k, x in v.items()))
    if isinstance(v, bytes):
        return field(0x3a, v)
    return pb_str(str(v))


def pb_pair(name, value):
    """A KeyValue: key (1), value (2), value an AnyValue's bytes."""
    return field(0x0a, name.encode("utf-8")) + field(0x12, value)


def pb_observed(mark):
    """observed_time_unix_nano (11, fixed64) of a drain's time mark: the
    bytes every record of that drain ends with."""
    return b"\x59" + _FIXED64(mark)


class ProtoEncoder(Encoder):
    """Encoder's records in protobuf: (rec, line, observed) -> the bytes
    of one log_records entry, observed pb_observed()'s. The same shapes, the
    same cache of what follows the time (its bytes, and the entry's head,
    whose length they fix)."""

    def generic(self, rec, line, observed):
        rest = [field(0x2a, pb_str(line))]
        for key, value in rec.items():
            if key == "ts" or value is None:
                continue
            name, convert = self.name(key)
            rest.append(field(0x32, pb_pair(name, pb_value(convert(value) if convert
                                                            else value))))
        head, rest = entry_head(b"".join(rest))
        return head + _FIXED64(time_ns(rec.get("ts"))) + rest + observed

    # -- what _shape() makes for protobuf ----------------------------------------
    WHAT = "OTLP protobuf"
    # the entry: its head (tag, length, the time's tag), the time, what
    # follows it (got: (head, bytes), cached), observed
    RECORD = "join((got[0], FIXED64(t), got[1], observed))"
    CHECK = ""              # its strings are made UTF-8 (pb_str)

    def _env(self):
        return {"join": b"".join, "field": field, "pb_str": pb_str, "pb_int": pb_int,
                "pb_value": pb_value, "FIXED64": _FIXED64, "entry_head": entry_head,
                "a": attribute_bytes}

    def _value(self, i, name, kind, v, env):
        """As Encoder's; the part: the attribute's bytes, its key's made once
        (an int outside int64 makes pb_int() None, and the record the
        generic encoder's). A bool's, an int's or a string's are kept for
        the last CACHED values of this attribute in this shape (where the
        value's type is the shape's: True and 1 never share one): a record
        whose values were not kept together mostly has most of them kept
        one by one, and an attribute made is ten calls or so."""
        key = env["k%d" % i] = field(0x0a, name.encode("utf-8")) + b"\x12"
        check = "type(%s) is %s" % (v, kind.__name__)
        make = {bool: pb_bool, int: pb_int, str: pb_str}.get(kind)
        if make is None:
            return check, "a(k%d, pb_value(%s))" % (i, v)
        env["p%d" % i], env["m%d" % i] = kept(lambda value: attribute_bytes(key, make(value)),
                                              self.CACHED)
        return check, "(p%d.get(%s) or m%d(%s))" % (i, v, i, v)

    def _rest(self, parts, env):
        rest = 'join((field(0x2a, pb_str(body)), %s))' % "".join(p + ", " for p in parts)
        return "entry_head(%s)" % rest


def entry_head(rest):
    """(the head of ScopeLogs' log_records entry (2) whose bytes after the
    time are rest: its tag, length and time_unix_nano's tag (1, fixed64);
    rest). The entry: head, the time, rest (body 5, attributes 6), then
    observed (11)."""
    return b"\x12" + varint(len(rest) + 18) + b"\x09", rest


def attribute_bytes(key, value):
    """LogRecord's attributes entry (6) of a KeyValue whose key (and the
    value's tag) are key and whose AnyValue is value; TypeError where value
    is None (an int outside int64: the shape gives way to generic)."""
    pair = key + varint(len(value)) + value
    return b"\x32" + varint(len(pair)) + pair


class Protobuf:
    """The protobuf encoding of requests (OTEL_EXPORTER_OTLP_PROTOCOL
    http/protobuf): what Exporter asks of an encoding."""

    content_type = "application/x-protobuf"
    encoder = ProtoEncoder
    observed = staticmethod(pb_observed)

    def __init__(self, tool):
        attrs = b"".join(field(0x0a, pb_pair(k, pb_str(v))) for k, v in resource_attributes(tool))
        self.resource = field(0x0a, attrs)
        # InstrumentationScope: name (1), version (2)
        self.scope = field(0x0a, field(0x0a, b"snooptools") + field(0x12, __version__.encode()))

    def body(self, records):
        return b"".join(self.parts(records))

    def parts(self, records):
        """The ExportLogsServiceRequest of records (log_records entries), in
        pieces (Exporter._batch() gzips them one by one): resource_logs (1)
        of the resource and scope_logs (2), that of the scope and the
        records."""
        scope_len = len(self.scope) + sum(map(len, records))
        scope_head = b"\x12" + varint(scope_len)
        yield b"".join((b"\x0a" + varint(len(self.resource) + len(scope_head) + scope_len),
                        self.resource, scope_head, self.scope))
        for i in range(0, len(records), PIECE_RECORDS):
            yield b"".join(records[i:i + PIECE_RECORDS])

    @staticmethod
    def partial_success(body):
        """As the JSON one; a collector may answer in JSON all the same."""
        if body.lstrip()[:1] == b"{":
            return partial_success(body)
        return proto_partial_success(body)


def proto_partial_success(body):
    """(rejected records, message) of an ExportLogsServiceResponse in
    protobuf: partial_success (1) of rejected_log_records (1, varint) and
    error_message (2)."""
    try:
        for number, value in pb_fields(body):
            if number == 1 and isinstance(value, bytes):
                rejected, message = 0, ""
                for n, v in pb_fields(value):
                    if n == 1 and isinstance(v, int):
                        rejected = v - (1 << 64) if v >= INT64 else v
                    elif n == 2 and isinstance(v, bytes):
                        message = v.decode("utf-8", "replace")
                return rejected, message
    except ValueError:
        pass
    return 0, ""


def pb_fields(data):
    """(number, value) of each field of a protobuf message: an int for a
    varint, bytes for a length-delimited or fixed field. ValueError on
    what is not protobuf."""
    i, end = 0, len(data)
    while i < end:
        key, i = pb_varint_at(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = pb_varint_at(data, i)
        elif wire == 2:
            n, i = pb_varint_at(data, i)
            value, i = data[i:i + n], i + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            value, i = data[i:i + n], i + n
        else:
            raise ValueError("wire type %d" % wire)
        if i > end or not number:
            raise ValueError("truncated")
        yield number, value


def pb_varint_at(data, i):
    """(the varint at data[i], the index after it)."""
    n = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        b = data[i]
        n |= (b & 127) << shift
        i += 1
        if b < 128:
            return n, i
        shift += 7


class Json:
    """The JSON encoding of requests (http/json): what Exporter asks of an
    encoding, as Protobuf."""

    content_type = "application/json"
    encoder = Encoder
    observed = str

    def __init__(self, tool):
        self.head, self.tail = request_parts(tool)

    def body(self, records):
        return b"".join(self.parts(records))

    def parts(self, records):
        """The request of records, in pieces (as Protobuf's)."""
        head = self.head
        for i in range(0, len(records), PIECE_RECORDS):
            yield (head + ",".join(records[i:i + PIECE_RECORDS])).encode("utf-8")
            head = ","
        yield (("" if records else self.head) + self.tail).encode("utf-8")

    @staticmethod
    def partial_success(body):
        return partial_success(body)


WIRES = {"http/protobuf": Protobuf, "http/json": Json}


# -- the exporter ---------------------------------------------------------------
class Failure(Exception):
    """A request that got no answer: the connection failed or timed out."""


class Http:
    """POSTs to one URL over a kept-alive connection, made again after a
    failure; https with the system's CA store (or cafile)."""

    def __init__(self, cfg):
        import http.client
        from urllib.parse import urlsplit
        self.url = cfg.url
        parts = urlsplit(cfg.url)
        self.path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        self.headers = {"Content-Type": cfg.wire.content_type,
                        "User-Agent": "snooptools/%s" % __version__}
        if cfg.gzip:
            self.headers["Content-Encoding"] = "gzip"
        self.headers.update(cfg.headers)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme == "https":
            import ssl
            context = ssl.create_default_context(cafile=cfg.cafile)
            self._new = lambda: http.client.HTTPSConnection(parts.hostname, port,
                                                            timeout=cfg.timeout, context=context)
        else:
            self._new = lambda: http.client.HTTPConnection(parts.hostname, port,
                                                           timeout=cfg.timeout)
        self._errors = (OSError, http.client.HTTPException)
        self._conn = None

    def post(self, body):
        """(status, reason, Retry-After header or None, response body);
        raises Failure when there was no answer."""
        try:
            if self._conn is None:
                self._conn = self._new()
            self._conn.request("POST", self.path, body, self.headers)
            resp = self._conn.getresponse()
            data = resp.read()
        except self._errors as e:
            self.close()
            raise Failure(describe(e)) from None
        if resp.will_close:
            self.close()
        return resp.status, resp.reason, resp.getheader("Retry-After"), data

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def describe(e):
    """A connection error, in a few words."""
    if isinstance(e, TimeoutError):
        return "timed out"
    text = (e.strerror if isinstance(e, OSError) and e.strerror else str(e)) or type(e).__name__
    return text[:1].lower() + text[1:]


class Exporter:
    """The queue between the poll loop and the collector, and the two
    threads that empty it: one encodes records and cuts them into gzipped
    batches, the other sends the batches (a request waiting on the
    collector stops no encoding). The loop calls add() per event, flush()
    per drain and close() at the stop; encode_step() and send_step() are
    each thread's work, one round at a time (a test drives them itself).

    Every record is counted until it is delivered or dropped: those still
    in waiting, and those the encoder took (seen) but that are neither
    delivered nor dropped since. What is left at close() is dropped."""

    FLUSH_EVERY = 1024      # events a drain hands over at a time (a power of two)

    def __init__(self, tool, transport, gzip=True, clock=time.monotonic, encoder=None,
                 wire=Json):
        self.url = transport.url
        self.transport, self.clock, self.gzip = transport, clock, gzip
        self.wire = wire(tool)          # the encoding: Json or Protobuf
        self.encode = encoder or wire.encoder(tool)
        self.waiting = collections.deque()      # (rec, line), and each drain's time mark
        self.add = self.waiting.append          # the poll loop's, per event
        self.lock = threading.Lock()            # the counts, and the shared queues' bounds
        self.seen = self.delivered = self.dropped = self.dropped_seen = 0
        self.chunk = []                 # (the encoder's) records whose drain's mark is to come
        self.unmarked = False           # the last item the encoder took is a record, not a mark
        self.ready = []                 # (the encoder's) encoded records, no batch yet
        self.ready_since = None
        self.batches = collections.deque()      # [data, records] to send, oldest first
        self.queued_bytes = 0
        self.retry_at, self.backoff = 0.0, 0.0
        self.why = ""                   # why the last records were dropped
        self.trouble = ""               # the last failure, while retrying
        self._said_dropped, self._said_trouble = 0, ""
        self.closing = self.closed = False
        self._work = threading.Event()      # wakes the encoder
        self._sendable = threading.Event()  # wakes the sender

    # -- the poll loop's side ---------------------------------------------------
    def start(self):
        for name, step, wake in (("otlp-encode", self.encode_step, self._work),
                                 ("otlp-send", self.send_step, self._sendable)):
            threading.Thread(target=self._run, args=(step, wake), name=name, daemon=True).start()

    def flush(self):
        """After a drain: mark the time its events were read, wake the
        encoder; past MAX_WAITING records, the newest are dropped."""
        waiting = self.waiting
        try:
            marked = type(waiting[-1]) is int
        except IndexError:          # the encoder may have taken the drain's events already
            with self.lock:
                marked = not self.unmarked
        if marked:
            return
        excess = len(waiting) - MAX_WAITING
        if excess > 0:
            self._shed(excess)
        waiting.append(time.time_ns())
        self._work.set()

    def _shed(self, excess):
        n = 0
        with self.lock:
            for _ in range(excess):
                try:
                    n += type(self.waiting.pop()) is tuple
                except IndexError:
                    break
            if not self.closed:
                self._drop(n, "the export fell behind the events (%d waiting to be encoded)"
                           % MAX_WAITING)

    def news(self):
        """What to say on stderr since the last call: "N events not
        exported: why" for those counted meanwhile; and a status line when
        the collector began to fail (retrying) or answers again."""
        lines, status = [], None
        if self.dropped > self._said_dropped:
            lines.append("%d events not exported: %s" % (self.dropped - self._said_dropped,
                                                         self.why))
            self._said_dropped = self.dropped
        trouble = self.trouble
        if bool(trouble) != bool(self._said_trouble):
            status = "otlp: %s: %s" % (self.url, "%s; retrying" % trouble if trouble else
                                       "delivering again")
        self._said_trouble = trouble
        return lines, status

    def close(self, give_up_at, stopped_again=lambda: False):
        """Send what is queued, waiting until give_up_at (a monotonic time)
        at the longest, or until stopped_again() says to stop now; then count
        what is left as not exported."""
        self.flush()
        self.closing = True
        self._work.set()
        pause = threading.Event()
        while not stopped_again() and time.monotonic() < give_up_at:
            with self.lock:
                if not self.pending():
                    break
            pause.wait(min(0.02, max(0.0, give_up_at - time.monotonic())))
        with self.lock:
            self.closed = True
            left = self.pending()
            if left:
                self._drop(left, "stopped by a second signal" if stopped_again() else
                           "the collector at %s did not take them within %g s of the stop%s"
                           % (self.url, sink.STOP_WAIT_SECONDS,
                              " (%s)" % self.trouble if self.trouble else ""))
        self._work.set()
        self._sendable.set()

    def pending(self):
        """Records neither delivered nor dropped yet (the poll loop's, with
        self.lock held: only the loop adds to waiting, only the encoder
        takes from it, with the lock)."""
        return sum(type(x) is tuple for x in self.waiting) + \
            self.seen - self.delivered - self.dropped_seen

    # -- the threads ---------------------------------------------------------------
    def _run(self, step, wake):
        """Run step() until closed, waiting as long as it says between two
        (None: until woken)."""
        while not self.closed:
            wake.clear()                # before the step: a wake-up during it counts
            try:
                timeout = step()
            except Exception as e:      # never a traceback: count, say, go on
                self._failed(step, e)
                timeout = None
            if timeout != 0:
                wake.wait(timeout)

    def _failed(self, step, e):
        """A step failed for a reason of ours: drop what its thread holds."""
        with self.lock:
            if step == self.encode_step:
                n = sum(type(x) is tuple for x in self.chunk) + len(self.ready)
                self.chunk, self.ready, self.ready_since = [], [], None
            else:
                n = sum(b[1] for b in self.batches)
                self.batches.clear()
                self.queued_bytes = 0
            if not self.closed:
                self.dropped_seen += n
                self._drop(n, "export failed: %s: %s" % (type(e).__name__, e))

    def encode_step(self):
        """Encode the records of the drains whose time mark has come (a
        batch's worth at most), batch them. Returns how long to wait before
        the next step when nothing new comes (0: at once; None: until
        woken)."""
        more = self._take()
        chunk, ready = self.chunk, self.ready
        end = len(chunk)
        while end and type(chunk[end - 1]) is not int:
            end -= 1                    # after the last mark: its drain's mark is to come
        if end:
            encode, start, texts = self.encode, 0, []
            for i in range(end):
                mark = chunk[i]
                if type(mark) is not int:
                    continue
                observed = self.wire.observed(mark)     # when the records before it were read
                texts += encode.all(chunk[start:i], observed)
                start = i + 1
            if texts and self.ready_since is None:
                self.ready_since = self.clock()
            ready.extend(texts)
            del chunk[:end]
        now = self.clock()
        self._cut(now)
        if more:
            return 0
        return max(0.0, self.ready_since + MAX_AGE_SECONDS - now) if ready else None

    def _take(self):
        """Move a batch's worth of waiting into chunk; True when it left some."""
        waiting, chunk = self.waiting, self.chunk
        n = min(len(waiting), BATCH_RECORDS)
        with self.lock:
            if self.closed:
                return False
            records = 0
            for _ in range(n):
                item = waiting.popleft()
                records += type(item) is tuple
                chunk.append(item)
            self.seen += records
            if n:
                self.unmarked = type(item) is tuple
        return len(waiting) > 0 and n == BATCH_RECORDS

    def _cut(self, now):
        """Batch the encoded records: every full batch, and the rest once
        the oldest is MAX_AGE_SECONDS old (or at the stop)."""
        ready = self.ready
        while len(ready) >= BATCH_RECORDS:
            self._batch(ready[:BATCH_RECORDS])
            del ready[:BATCH_RECORDS]
        if ready and (self.closing or now >= self.ready_since + MAX_AGE_SECONDS):
            self._batch(ready)
            ready.clear()
        if not ready:
            self.ready_since = None

    def _batch(self, records):
        """Queue one request's body, gzipped; or drop its records while
        MAX_QUEUED_BYTES wait for the collector."""
        if self.queued_bytes < MAX_QUEUED_BYTES:
            if self.gzip:
                z = zlib.compressobj(1, zlib.DEFLATED, 31)      # 31: the gzip format
                data = b"".join([*map(z.compress, self.wire.parts(records)), z.flush()])
            else:
                data = self.wire.body(records)
        with self.lock:
            if self.closed:
                return
            if self.queued_bytes >= MAX_QUEUED_BYTES:
                self.dropped_seen += len(records)
                self._drop(len(records), "the collector at %s did not keep up (%d MiB waiting%s)"
                           % (self.url, MAX_QUEUED_BYTES >> 20,
                              ": " + self.trouble if self.trouble else ""))
                return
            self.batches.append([data, len(records)])
            self.queued_bytes += len(data)
        self._sendable.set()

    def send_step(self):
        """Send the oldest batch, when it is due. Returns how long to wait
        before the next step, as encode_step()."""
        if not self.batches:
            return None
        now = self.clock()
        if now < self.retry_at:
            return self.retry_at - now
        batch = self.batches[0]
        data, n = batch
        try:
            status, reason, retry_after, body = self.transport.post(data)
        except Failure as e:
            status, reason, retry_after, body = None, str(e), None, b""
        with self.lock:
            if self.closed:
                return None
            if status is not None and 200 <= status < 300:
                rejected, message = self.wire.partial_success(body)
                self._done(batch, n - rejected)
                if rejected:
                    self._drop(rejected, "the collector rejected them%s"
                               % (": " + message if message else ""))
                self.backoff, self.trouble = 0.0, ""
            elif status is None or status in RETRYABLE:
                self.trouble = reason if status is None else "HTTP %d %s" % (status, reason)
                self.retry_at = self.clock() + self._delay(retry_after)
            else:
                self._done(batch, 0)
                self._drop(n, "HTTP %d %s from %s%s" % (status, reason, self.url,
                                                        error_text(body)))
        return 0

    def _done(self, batch, delivered):
        """The oldest batch is answered: delivered of its records taken,
        the others dropped (counted by the caller)."""
        self.batches.popleft()
        self.queued_bytes -= len(batch[0])
        self.delivered += delivered
        self.dropped_seen += batch[1] - delivered

    def _delay(self, retry_after):
        """The wait before the next try: Retry-After where the collector
        says it, else doubling backoff from FIRST_BACKOFF_SECONDS, jittered."""
        self.backoff = min(MAX_BACKOFF_SECONDS, self.backoff * 2 or FIRST_BACKOFF_SECONDS)
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after), MAX_RETRY_AFTER_SECONDS)
        return self.backoff * random.uniform(0.8, 1.2)

    def _drop(self, n, why):
        """Count n records as not exported (with self.lock held)."""
        if n:
            self.dropped += n
            self.why = why


def partial_success(body):
    """(rejected records, message) of a response's partialSuccess."""
    if not body or body.strip() == b"{}":
        return 0, ""
    try:
        p = json.loads(body).get("partialSuccess") or {}
        return int(p.get("rejectedLogRecords") or 0), str(p.get("errorMessage") or "")
    except (ValueError, AttributeError, TypeError):
        return 0, ""        # a protobuf answer, or none we read


def error_text(body):
    """The start of an error response's text, for the user."""
    text = body[:200].decode("utf-8", "replace").strip()
    return ": " + " ".join(text.split()) if text else ""


def start(tool, args):
    """The Exporter of --otlp, its threads running. A tool whose records come
    from several tools (snoop) names them by each record's event:
    tool.event_tools, {event: tool name}."""
    cfg = config(args)
    events = getattr(tool, "event_tools", None)
    exporter = Exporter(tool.name, Http(cfg), cfg.gzip, wire=cfg.wire,
                        encoder=ByEvent(events, cfg.wire.encoder) if events else None)
    exporter.start()
    return exporter
