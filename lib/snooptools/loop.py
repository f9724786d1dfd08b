"""The poll loop: from "Tracing ..." to the last event written. It drains
the kernel's buffer every POLL_SECONDS at the longest, decodes each record
with the decoder made for the tool (decoder()), writes each batch through
stdout's sink, reports lost events as they grow, and ends between drains
at Ctrl-C, SIGTERM, SIGHUP, --duration or the end of --exec's command."""
import functools
import itertools
import os
import signal
import sys
import time

from . import filters, output, sink, tree
from .errors import SnoopError
from .output import kstr

POLL_SECONDS = 0.05     # longest an event waits in the buffer before it is shown
LOST_CHECK_SECONDS = 1.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def trace(tool, obj, buf, args):
    """Print tool's events from buf until stopped; the exit status."""
    out = tool.writer(args)
    summary = output.Summary(tool.summary_key, tool.summary_header) if args.summary else None
    export = None
    if getattr(args, "otlp", None) is not None:
        from . import otlp
        export = otlp.start(tool, args)
    handle = decoder(tool, obj.layout("event"), emitter(out, summary, export, args))
    return serve(tool, buf, args, out, summary, handle, filters.refresher(obj, args),
                 functools.partial(filters.tree_misses, obj, args), export)


def serve(tool, buf, args, out, summary, handle, refresh=None, misses=lambda: None,
          export=None):
    """Print the events of buf through handle and out until stopped; the
    exit status. (trace() for one tool's object; snoop's for several.)
    misses() counts the processes of --tree's tree not followed; export,
    --otlp's (otlp.py)."""
    # From here on Ctrl-C, SIGTERM and SIGHUP end tracing between drains,
    # never inside one: an exception raised mid-drain would leave records
    # written but not released, to be read and written again. The first
    # also bounds the wait for a stalled reader of stdout; another ends it
    # at once.
    stopping, stdout = tool.stopping, tool.stdout

    def on_stop(sig, _frame):
        stopping.append(sig)
        stdout.stop()

    handlers = {sig: signal.signal(sig, on_stop) for sig in STOP_SIGNALS}
    try:
        return _loop(tool, buf, args, out, summary, handle, refresh, misses, export)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        stdout.close()


def emitter(out, summary, export, args):
    """emit(rec), the decoder's: rec to the summary, to the writer, and with
    the line the writer made of it to the export (--otlp; with --otlp-only
    the writer keeps nothing, and where the same values make the same line,
    the export makes it, once for each: (rec, None))."""
    only = getattr(args, "otlp_only", False)
    write = out.text if only else out.write
    if export is not None:
        # A drain lasts as long as events come faster than it reads them:
        # the export is handed them every FLUSH_EVERY events too, not only
        # after the drain (its memory bound is kept there).
        add, flush, count, every = export.add, export.flush, itertools.count(1), \
            export.FLUSH_EVERY - 1
        lazy = only and getattr(out, "of_values", False) and export.encode.lines_from(write)
        if summary is None and lazy:
            def emit(rec):
                add((rec, None))
                if not next(count) & every:
                    flush()
        elif summary is None:
            def emit(rec):
                add((rec, write(rec)))
                if not next(count) & every:
                    flush()
        else:
            def emit(rec):
                summary.add(rec)
                add((rec, None if lazy else write(rec)))
                if not next(count) & every:
                    flush()
        return emit
    if summary is not None:
        def emit(rec):
            summary.add(rec)
            write(rec)
        return emit
    return write


def _loop(tool, buf, args, out, summary, handle, refresh=None, misses=lambda: None,
          export=None):
    stopping, stdout, child = tool.stopping, tool.stdout, tool.child
    tool.out = out
    tool.status(args, tool.tracing)
    if not tool.deferred(args) and not getattr(args, "otlp_only", False):
        out.header()
    if child:
        child.release()
    now = time.monotonic()
    deadline = now + args.duration if args.duration else None
    stdout.stop_at = deadline
    lost_at, lost_seen = now + LOST_CHECK_SECONDS, 0
    missed = 0          # processes of the tree not followed, once said
    while not stopping:
        timeout = POLL_SECONDS
        if deadline is not None:
            timeout = min(timeout, deadline - now)
            if timeout <= 0:
                break
        buf.wait(timeout)       # a signal ends it within POLL_SECONDS
        buf.drain(handle)
        out.flush()
        if export:
            export.flush()
        if child and child.exited():
            break
        now = time.monotonic()
        if refresh:
            refresh(now)
        if now >= lost_at:
            lost_seen = report_lost(buf, lost_seen)
            missed = report_misses(misses, missed)
            if export:
                report_export(export, args)
            lost_at = now + LOST_CHECK_SECONDS
    stdout.stop()               # what is left waits a bounded time for the reader
    buf.wait(0)
    buf.drain(handle)
    out.flush()
    lost_seen = report_lost(buf, lost_seen)
    missed = report_misses(misses, missed)
    if child and child.exited():
        tool.status(args, child.outcome())
    if export:
        # within the same bounded wait as stdout's
        export.close(stdout.give_up_at, lambda: len(stopping) > 1)
        report_export(export, args)
    tool.finish(args, out)
    if stdout.unwritten:
        say("%d events not written: %s" % (
            stdout.unwritten, "stdout's reader did not take them within %g s of the stop"
            % sink.STOP_WAIT_SECONDS if len(stopping) < 2 else "stopped by a second signal"))
    if summary is not None:
        text = summary.render(lost_seen, stdout.unwritten, misses(),
                              export and export.dropped)
        if args.json:
            say(text, end="")
        else:
            stdout.write(text)
    return 0


def decoder(tool, layout, emit, event=None):
    """handle(data, start, end): the record of one event, from its bytes to
    emit(), as one function made for tool's struct event and record()
    (Layout.function): no dict of the event's fields is made, and record()
    gets the fields it names as its arguments. event: the record's first
    key, "event", is this (snoop: the tool's short name).

    Every record has the task's cgroup_id, and vpid where its pid namespace
    numbers it otherwise; in --json (and for --containers) the keys of its
    container too, from a cache by cgroup id (containers.Resolver): a
    cgroup is looked at once, not per event."""
    comms = {}      # a few names recur: decode each once
    head = set(layout.names)
    args = tool.args
    resolver = tool.containers = None
    wanted = args is not None and (args.json or filters.container_column(args)
                                   or getattr(args, "otlp", None) is not None)
    if "cgroup_id" in head and wanted:
        from . import containers
        resolver = tool.containers = containers.Resolver()
    elif wanted and filters.container_column(args):
        raise SnoopError("%s: its events carry no cgroup id" % tool.name,
                         "rebuild the BPF object (make)")

    def new_comm(raw):
        if len(comms) > 4096:
            comms.clear()
        comm = comms[raw] = kstr(raw)
        return comm

    body = ("comm = comms.get(f_comm)\n"
            "if comm is None:\n"
            "    comm = new_comm(f_comm)\n"
            "rec = {%s'ts': f_ts_ns / 1e9 + offset, 'pid': f_pid, 'tid': f_tid,\n"
            "       'uid': f_uid, 'comm': comm%s}\n") % (
                "" if event is None else "'event': %r, " % event,
                ", 'cgroup_id': f_cgroup_id" if "cgroup_id" in head else "")
    if "vpid" in head:
        body += ("if f_vpid != f_pid and f_vpid:\n"
                 "    rec['vpid'] = f_vpid\n")
    if resolver is not None:
        body += ("box = boxes.get(f_cgroup_id)\n"
                 "if box is None:\n"
                 "    box = resolve(f_cgroup_id)\n"
                 "if box:\n"
                 "    rec.update(box)\n")
    body += ("rec = record(rec%s)\n"
             "if rec is not None:\n"
             "    emit(rec)\n") % "".join(", f_" + f for f in tool.record_fields(layout))
    scope = {"comms": comms, "new_comm": new_comm, "emit": emit, "record": tool.record,
             "offset": tool.clock.offset}
    if resolver is not None:
        scope.update(boxes=resolver.cache, resolve=resolver)
    return layout.function(body, scope)


def report_lost(buf, seen):
    """Say how many events buf lost since the count seen; the count now:
    a number, or (snoop) {tool: number}, said tool by tool."""
    lost = buf.lost()
    if isinstance(lost, dict):
        for name, n in lost.items():
            if n > (seen or {}).get(name, 0):
                say("%d %s events lost" % (n - (seen or {}).get(name, 0), name))
    elif lost > seen:
        say("%d events lost" % (lost - seen))
    return lost


def report_misses(misses, said):
    """Say once that processes of the followed tree were left out (the
    kernel's map of them was full): misses() counts them (None: no tree
    is followed). The count so far, or said."""
    if said:
        return said
    n = misses()
    if n:
        say("%d processes of the tree not followed: its map is full (%d processes; "
            "%s=N sets the size)" % (n, tree.max_entries(), tree.MAX_ENV))
    return n


def report_export(export, args):
    """Say how many more events could not be exported, and why; and (a
    status line) when the collector began to fail or answers again."""
    lines, status = export.news()
    for line in lines:
        say(line)
    if status and not args.quiet:
        say(status)


def say(text, end="\n"):
    """A line on stderr, for the user: a closed or failing stderr is no
    reason to fail (the events went to stdout)."""
    try:
        sys.stderr.write(text + end)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class Child:
    """A command started before tracing, held at a pipe until every probe is
    attached, so that its whole life is traced (--exec)."""

    def __init__(self, argv):
        self.argv = argv
        r, self._w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self._w)
            if os.read(r, 1) != b"x":
                os._exit(0)         # the tracer gave up before starting it
            os.close(r)
            try:
                os.execvp(argv[0], argv)
            except OSError as e:
                sys.stderr.write("%s: %s\n" % (argv[0], e.strerror))
            os._exit(127)
        os.close(r)
        self._status = None

    def release(self):
        os.write(self._w, b"x")
        os.close(self._w)
        self._w = None

    def outcome(self):
        """How the command ended, for a status line."""
        if os.WIFSIGNALED(self._status):
            sig = os.WTERMSIG(self._status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = "signal %d" % sig
            return "%s was killed by %s" % (self.argv[0], name)
        return "%s exited with status %d" % (self.argv[0], os.WEXITSTATUS(self._status))

    def exited(self):
        if self._status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._status = status
        return self._status is not None

    def __del__(self):
        if getattr(self, "_w", None) is not None:
            os.close(self._w)
