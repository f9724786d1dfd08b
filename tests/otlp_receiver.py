"""An OTLP/HTTP logs receiver on 127.0.0.1 for the tests: every request body
is parsed against the official schema (opentelemetry-proto's
ExportLogsServiceRequest), as its Content-Type says: JSON with protobuf's
json_format.Parse, unknown fields rejected; protobuf with its parser, and
written again to the very same bytes (nothing unknown, nothing out of
protobuf's own form). Its records are kept with their attributes as Python
values, and each request's Content-Type in content_types.

    with Receiver(answer=lambda n: 503 if n < 3 else 200) as r:
        ... run a tool with --otlp r.url ...
    r.records, r.requests, r.errors
"""
import gzip
import http.server
import threading
import time

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest


def value(v):
    """An AnyValue as the Python value it holds."""
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def attributes(kvs):
    out = {}
    for kv in kvs:
        assert kv.key not in out, "attribute %s twice" % kv.key
        out[kv.key] = value(kv.value)
    return out


def parse_protobuf(data):
    """A protobuf request, which must be written again to the very same
    bytes: nothing unknown, nothing out of protobuf's own form and order."""
    msg = ExportLogsServiceRequest.FromString(data)
    assert msg.SerializeToString() == data, "not protobuf's own bytes"
    return msg


class Record:
    """One log record: its times, body, attributes and its resource's."""

    def __init__(self, rec, resource):
        self.time_ns, self.observed_ns = rec.time_unix_nano, rec.observed_time_unix_nano
        self.body = value(rec.body)
        self.attributes = attributes(rec.attributes)
        self.resource = resource

    def __repr__(self):
        return "Record(%r, %r)" % (self.body, self.attributes)


class Receiver:
    """answer(n) -> the HTTP status of the n-th request (from 0); only a
    2xx request's records are kept."""

    def __init__(self, answer=lambda n: 200):
        self.answer = answer
        self.records, self.errors, self.statuses = [], [], []
        self.headers, self.content_types = [], []
        self.requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"       # kept-alive, as a collector's

            def do_POST(self):
                receiver.handle(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_port

    def handle(self, h):
        data = h.rfile.read(int(h.headers.get("Content-Length", 0)))
        with self._lock:
            n = self.requests
            self.requests += 1
            status = self.answer(n)
            self.statuses.append(status)
            self.headers.append(dict(h.headers))
            if 200 <= status < 300:
                try:
                    self.parse(h.path, h.headers, data)
                except Exception as e:      # kept for the test to show
                    self.errors.append("%s: %s" % (type(e).__name__, e))
                    status = 400
        body = b"{}" if status == 200 else b"busy"
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def parse(self, path, headers, data):
        assert path == "/v1/logs", path
        kind = headers["Content-Type"]
        self.content_types.append(kind)
        if headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        if kind == "application/x-protobuf":
            msg = parse_protobuf(data)
        else:
            assert kind == "application/json", kind
            msg = ExportLogsServiceRequest()
            json_format.Parse(data.decode("utf-8"), msg)    # unknown fields are an error
        for rl in msg.resource_logs:
            resource = attributes(rl.resource.attributes)
            for sl in rl.scope_logs:
                assert sl.scope.name == "snooptools"
                self.records.extend(Record(r, resource) for r in sl.log_records)

    def wait(self, until, seconds):
        """Until until(records) is true, or for seconds at most: a test
        stops the tool once its collector has what it sent, not while a
        slow guest still parses (the tool's stop waits 5 s for its
        collector)."""
        give_up = time.monotonic() + seconds
        while not until(self.records) and time.monotonic() < give_up:
            time.sleep(0.05)

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
