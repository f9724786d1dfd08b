"""snoop: several tools' kernel programs in one process, one stream of their
events in the order they happened.

    snoop exec,open,exit --pid 42 open: -x -F exec: -x

Every tool named runs as it would alone (its driver's own class, from the
directory of the drivers: its options, configure(), record(), columns), and
the common options (filters, --json, --summary, --duration ...) apply to
every object through the same shared code as for one tool. What is snoop's
own:

- one ring buffer, made before any object is loaded and given to each
  (transport.SharedRing: bpf_map__reuse_fd), so records are read in the
  order they were reserved, across tools and CPUs; each record's head says
  which tool wrote it (task_head.tool_id, written from the this_tool knob),
  and the reader hands it to that tool's decoder. The perf buffer is one
  buffer per CPU, with no order across them: snoop refuses it.
- the objects are loaded in parallel threads: a load is libbpf's and the
  kernel's work (CO-RE relocations against the kernel's BTF, the verifier),
  done outside the GIL.
- text lines start with EVENT, the tool's short name; each tool's header
  line is printed once at the start, its EVENT cell the name in capitals.
  JSON objects are each tool's own, with "event" first.
- exec and exit together: an exit carries the command line of the exec
  seen before it in the same process (Joiner).

A TOOL: word starts that tool's own options (section()): everything up to
the next TOOL: word goes to that tool's parser, as its command line would.
"""
import argparse
import os
import sys
import threading

from . import cli, filters, kernel, libbpf, loop, output, startup, transport
from .btf import STRUCT
from .errors import SnoopError, UsageError
from .loop import say
from .tool import Tool

SUFFIX = "snoop"
JOIN_MAX = 16384        # command lines kept for exits to come (the oldest go first)


# -- the tools ------------------------------------------------------------------
def tool_names(directory):
    """{short name: tool} of the drivers in directory (exec: execsnoop)."""
    try:
        files = os.listdir(directory)
    except OSError as e:
        raise SnoopError("cannot list the tools in " + directory, e.strerror) from None
    return {f[:-len(SUFFIX)]: f for f in sorted(files)
            if f.endswith(SUFFIX) and f != SUFFIX and not f.startswith((".", "_"))}


def tool_class(directory, name):
    """The Tool subclass of driver name in directory, imported as a module
    (drivers have no .py suffix: loaded by their path)."""
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader("snooptools_tool_" + name,
                                                  os.path.join(directory, name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, Tool) and value.name == name:
            return value
    raise SnoopError("%s defines no tool named %s" % (os.path.join(directory, name), name))


# -- the command line -------------------------------------------------------------
def split_sections(argv, names):
    """(snoop's own arguments, {short name: its section's arguments}): a
    word TOOL: (or TOOL:-x, the first option joined) starts TOOL's section,
    which runs to the next such word. names: {short name: tool}; a tool's
    full name is taken too (opensnoop: is open:)."""
    shorts = dict(names)
    shorts.update({full: short for short, full in names.items()})
    shorts.update({short: short for short in names})
    own, sections, current = [], {}, None
    for word in argv:
        name, colon, rest = word.partition(":")
        if colon and name in shorts and (not rest or rest.startswith("-")):
            current = sections.setdefault(shorts[name], [])
            if rest:
                current.append(rest)
        elif current is None:
            own.append(word)
        else:
            current.append(word)
    return own, sections


def chosen(words, names, sections):
    """The short names of the tools to run, in the order named: the TOOL
    lists (comma or space separated; all: every tool that needs no
    argument of its own), then those with a section not named before.
    UsageError for a name that is no tool."""
    out = []
    for word in words:
        for name in filter(None, word.split(",")):
            name = names.get(name) and name or _short(name, names)
            if name == "all":
                out += [n for n in names if n not in out]
            elif name not in out:
                out.append(name)
    out += [n for n in sections if n not in out]
    if not out:
        raise UsageError("no tool named: give TOOL[,TOOL...] (%s) or all" % ", ".join(names))
    return out


def _short(name, names):
    full = {v: k for k, v in names.items()}
    if name in full:
        return full[name]
    if name == "all":
        return name
    raise UsageError("unknown tool %r: one of %s, or all" % (name, ", ".join(names)))


def one_line_errors(parser, prefix):
    """parser.error() as one line, prefix first, exit status 2 (snoop's
    command line mixes several tools' options: their usage would be long
    and say little)."""
    def error(message):
        say("%s: %s" % (prefix, message))
        sys.exit(2)
    parser.error = error
    return parser


def section_parser(tool, short):
    """The parser of a tool's section: the tool's own options, and -e where
    the tool has it (the common options are snoop's, before any section)."""
    p = argparse.ArgumentParser(prog="snoop %s:" % short, add_help=False,
                                formatter_class=cli._HelpFormatter)
    tool.add_arguments(p)
    cli.add_extended(p, tool)
    return one_line_errors(p, "snoop: " + short)


def needs_arguments(parser):
    """Whether a section parser has a required argument (ttysnoop's tty)."""
    return any(a.required for a in parser._actions)


# -- one stream -------------------------------------------------------------------
class Member:
    """One tool of the stream: its short name, driver instance, tag (its
    records' tool_id), its own options (own: {dest: value}) and, once
    started, its object and the layout of its events."""

    def __init__(self, short, tool, tag, own):
        self.short, self.tool, self.tag, self.own = short, tool, tag, own
        self.obj = self.layout = None
        self.summary = None

    def take(self, args):
        """The tool's command line: the common options of args, and its own
        (the same namespace, which the tool keeps as self.args)."""
        targs = self.tool.args or argparse.Namespace()
        vars(targs).update(vars(args))
        vars(targs).update(self.own)
        self.tool.args = targs
        return targs


class Joiner:
    """exec and exit together: an exit carries the command line (args) of
    the exec seen before it in the same process, kept per pid (at most
    JOIN_MAX, the oldest dropped first) until the process exits."""

    def __init__(self, per_thread=False):
        self.args = {}
        self.per_thread = per_thread

    def exec_seen(self, rec):
        args = self.args
        args.pop(rec["pid"], None)          # re-inserted: the newest
        args[rec["pid"]] = rec["args"]
        if len(args) > JOIN_MAX:
            del args[next(iter(args))]

    def exit_seen(self, rec):
        pid = rec["pid"]
        # a thread's exit (--per-thread) is not its process's end
        last = not self.per_thread or rec["tid"] == pid
        found = self.args.pop(pid, None) if last else self.args.get(pid)
        if found is not None:
            rec["args"] = found


def args_text(rec):
    """ARGS of an exit: the command line of its exec, as execsnoop shows it
    (nothing, not even the space before it, when no exec was seen)."""
    args = rec.get("args")
    return " " + " ".join(output.escape(a) for a in args) if args else ""


class Stream:
    """The writer loop.serve() is given: each tool's writer (text or JSON)
    shares one list of pending lines, so a flush writes them in the order
    their records were read."""

    def __init__(self, members, writers, header_lines):
        self.members, self.writers, self.header_lines = members, writers, header_lines

    def header(self):
        if self.header_lines:
            self.writers[0].sink.write("".join(self.header_lines))

    def flush(self):
        self.writers[0].flush()


class Summary:
    """--summary: each tool's table of counts, under its name."""

    def __init__(self, members):
        self.members = members

    def render(self, lost, unwritten=0, not_followed=None, unexported=None):
        """As output.Summary's (loop.serve() calls both): what concerns the
        whole stream first (the events not written, not exported, the tree's
        processes not followed), then each tool's table."""
        parts = ["%d events not written\n" % unwritten] if unwritten else []
        if unexported is not None:
            parts.append("%d events not exported\n" % unexported)
        if not_followed is not None:
            parts.append("%d processes of the tree not followed\n" % not_followed)
        for m in self.members:
            text = m.summary.render((lost or {}).get(m.short, 0))
            parts.append("%s: %s" % (m.short, text))
        return "\n".join(parts)


class Snoop(Tool):
    name = "snoop"
    description = "Run several snoop tools at once: one stream of their events, in order."
    filter_maps = True          # --cgroupmap, --mntnsmap: every object has their maps
    tool_dir = None             # where the drivers are (the snoop driver's directory)
    examples = """\
  snoop exec,open,exit              # three tools, one stream
  snoop exec open exit --pid 181    # the same, only process 181
  snoop all --comm make             # every tool this kernel can run
  snoop exec,exit --json            # exits carry the exec's args
  snoop open,exec open: -x -F exec: -x    # each tool's own options
  snoop all tty: /dev/pts/2         # ttysnoop, which needs its tty, too
  snoop exec,exit --otlp collector:4318   # the stream to an OpenTelemetry Collector
"""

    def __init__(self):
        super().__init__()
        self.members = []
        self.joiner = None

    def add_arguments(self, p):
        names = tool_names(self.tool_dir)
        p.add_argument("tools", nargs="*", metavar="TOOL[,TOOL...]",
                       help="the tools to run, by short name (%s), or all: every tool that "
                            "needs no argument of its own; TOOL: starts that tool's own "
                            "options (see below)" % ", ".join(names))

    def parser(self):
        p = cli.parser(self)
        p.usage = "snoop [options] TOOL[,TOOL...]|all [TOOL: OPTION...]..."
        p.epilog = ("each tool's own options follow a word TOOL: (or TOOL:OPTION), after "
                    "the common options,\nas that tool takes them; e.g. open: -x -F exec: -x\n\n"
                    "examples:\n" + self.examples)
        return one_line_errors(p, "snoop")

    def parse(self, argv=None):
        names = tool_names(self.tool_dir)
        own, sections = split_sections(sys.argv[1:] if argv is None else argv, names)
        args, parser = cli.parse(self, own)
        self.args = args
        try:
            self.members = self.make_members(args, names, sections)
        except UsageError as e:
            parser.error(str(e))
        return args, parser

    def make_members(self, args, names, sections):
        picked = chosen(args.tools, names, sections)
        everything = wants_all(args)
        members = []
        for short in picked:
            tool = tool_class(self.tool_dir, names[short])()
            parser = section_parser(tool, short)
            if everything and short not in sections and needs_arguments(parser):
                continue            # all: the tools that need no argument
            members.append(self.member(short, tool, parser, sections.get(short, []), args,
                                       len(members) + 1))
        return members

    def member(self, short, tool, parser, argv, args, tag):
        m = Member(short, tool, tag, vars(parser.parse_args(argv)))
        targs = m.take(args)
        tool.validate(targs, parser)
        if tool.deferred(targs):
            parser.error("a table at the end has no place in a stream: run %s alone for it"
                         % tool.name)
        return m

    # -- run ------------------------------------------------------------------------
    def run(self, args):
        kernel.check_privileges()      # (probing for a ring buffer needs them)
        libbpf.load()
        if not transport.use_ring():
            raise SnoopError("no BPF ring buffer",
                             "one ring keeps every tool's events in order; a perf buffer "
                             "is one per CPU", "run the tools one at a time")
        self.prepare(args)
        filters.container_selection(args)      # made once, for every tool
        for m in self.members:
            m.take(args)        # what prepare() made of the common options, for each
        ring = transport.SharedRing(self.ring_bytes)
        core = startup.cut_btf([m.tool.name for m in self.members])
        try:
            self.start(args, ring, core)
            buf = transport.RingBuffer(ring.fd, ring.size, self.lost)
            try:
                return self.trace(args, buf)
            finally:
                buf.close()
        finally:
            close_all([m.obj for m in self.members if m.obj is not None])
            ring.close()
            if core is not None:
                core.close()

    def start(self, args, ring, core=None):
        """Start every member's object, in parallel threads, relocated
        against core (startup.cut_btf()) where there is one; leave out (all) or
        fail on (tools named) those that cannot run here."""
        failed = {}
        todo = list(self.members)

        def work():
            while todo:
                try:
                    m = todo.pop()
                except IndexError:
                    return
                try:
                    m.obj = start_member(m, ring, core)
                    # here, while other threads are in the kernel's loads
                    m.layout = m.obj.layout("event")
                except BaseException as e:      # re-raised in the main thread
                    failed[m.short] = e

        threads = [threading.Thread(target=work, daemon=True)
                   for _ in range(min(len(todo), kernel.online_cpus()))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.left_out(args, failed)
        self.tracing = "Tracing %s... Ctrl-C to end." % ", ".join(m.short for m in self.members)
        clock = min((m.tool.clock for m in self.members), key=lambda c: c.start)
        for m in self.members:
            m.tool.clock = clock

    def left_out(self, args, failed):
        """The members that failed: with all, those the kernel cannot run
        are said and left out; else the first failure ends snoop."""
        everything = wants_all(args)
        for m in self.members:
            e = failed.get(m.short)
            if e is None:
                continue
            if not isinstance(e, SnoopError) or isinstance(e, UsageError) or not everything:
                if isinstance(e, SnoopError) and not isinstance(e, UsageError):
                    raise SnoopError("%s: %s" % (m.tool.name, e.what), e.why, e.hint)
                raise e
            say("snoop: %s left out: %s" % (m.tool.name, e))
        self.members = [m for m in self.members if m.short not in failed]
        if not self.members:
            raise SnoopError("no tool could start")

    def lost(self):
        return {m.short: m.obj.percpu_sum("lost_events") for m in self.members}

    def trace(self, args, buf):
        shorts = {m.short for m in self.members}
        if {"exec", "exit"} <= shorts:
            exit_args = next(m.tool.args for m in self.members if m.short == "exit")
            self.joiner = Joiner(getattr(exit_args, "per_thread", False))
        out = self.writer(args)
        export = None
        if args.otlp is not None:
            from . import otlp
            export = otlp.start(self, args)
        handle = self.dispatcher(out, export)
        refreshers = [r for r in (filters.refresher(m.obj, m.tool.args) for m in self.members)
                      if r]

        def refresh(now):
            for r in refreshers:
                r(now)
        return loop.serve(self, buf, args, out, Summary(self.members) if args.summary else None,
                          handle, refresh if refreshers else None, self.tree_misses, export)

    @property
    def event_tools(self):
        """--otlp: which tool each record's event is of, for its attributes'
        names (otlp.ByEvent)."""
        return {m.short: m.tool.name for m in self.members}

    def tree_misses(self):
        """--tree's processes not followed, in every member's map (each
        object follows the tree in its own); None without --tree."""
        counts = [filters.tree_misses(m.obj, m.tool.args) for m in self.members]
        return None if None in counts else sum(counts)

    def dispatcher(self, out, export=None):
        """handle(data, start, end) of a record of any member: its head's
        tool_id picks the member's decoder."""
        handlers = [None] * (max(m.tag for m in self.members) + 1)
        offset = None
        for m, writer in zip(self.members, out.writers):
            here = tool_id_offset(m.obj)
            if offset is not None and here != offset:
                raise SnoopError("the objects disagree on where an event's tool is",
                                 hint="rebuild them (make)")
            offset = here
            handlers[m.tag] = loop.decoder(m.tool, m.layout,
                                           self.emitter(m, writer, export), m.short)
        # tags are below 256: the one byte of tool_id that holds it
        at = offset if sys.byteorder == "little" else offset + 3

        def handle(data, start, end):
            handlers[data[start + at]](data, start, end)
        return handle

    def emitter(self, m, writer, export=None):
        """What a member's decoder hands its records to: the writer (and
        --otlp's export), and the member's summary and the exec/exit join
        where they are on."""
        steps = []
        if self.joiner is not None and m.short == "exec":
            steps.append(self.joiner.exec_seen)
        if self.joiner is not None and m.short == "exit":
            steps.append(self.joiner.exit_seen)
        if self.args.summary:
            m.summary = output.Summary(m.tool.summary_key, m.tool.summary_header)
            steps.append(m.summary.add)
        write = loop.emitter(writer, None, export, self.args)
        if not steps:
            return write

        def emit(rec):
            for step in steps:
                step(rec)
            write(rec)
        return emit

    def writer(self, args):
        pending = []
        if args.json:
            sink = self.open_stdout("utf-8")
            writers = [output.JsonWriter(sink, pending) for _ in self.members]
            return Stream(self.members, writers, [])
        sink = self.open_stdout()
        width = -max(len("EVENT"), *(len(m.short) for m in self.members))
        writers, heads = [], []
        for m in self.members:
            cols = [output.Column("EVENT", "event", width)] + m.tool.text_columns(m.tool.args)
            if self.joiner is not None and m.short == "exit":
                cols.append(output.Column(" ARGS", None, fmt=args_text, sep=""))
            w = output.TextWriter(cols, sink, m.tool.text_rows, pending)
            writers.append(w)
            heads.append(w.header_line(event=m.short.upper()))
        return Stream(self.members, writers, heads)

    def finish(self, args, out):
        for m, w in zip(self.members, out.writers):
            m.tool.finish(m.tool.args, w)


def close_all(objs):
    """Close objs at once: each detaches its programs in parallel threads
    (an RCU grace period each), and so do the objects."""
    threads = [threading.Thread(target=obj.close) for obj in objs[1:]]
    for t in threads:
        t.start()
    if objs:
        objs[0].close()
    for t in threads:
        t.join()


def start_member(m, ring, core):
    """m's object, started (startup.start_cut)."""
    return startup.start_cut(m.tool, m.tool.args, core, ring, m.tag)[0]


def wants_all(args):
    return "all" in ",".join(args.tools).split(",")


def tool_id_offset(obj):
    """Where an event's tool_id is: its offset in struct task_head, the
    head every event starts with."""
    tid = obj.types.find("task_head", STRUCT)
    for name, _, off in obj.types.members(tid) if tid else ():
        if name == "tool_id":
            return off
    raise SnoopError("%s's events do not say their tool" % obj.name,
                     hint="rebuild the BPF objects (make)")
