"""SyscallTool: what every syscall tool shares, on the Python side of
bpf/include/syscall.bpf.h.

Its calls are the object's own `enum call` (read from its BTF): each has an
entry program, <call>_enter, which libbpf attaches at sys_enter_<call>, and
the one exit program, syscall_exit, is attached here at each call's
sys_exit tracepoint. The result filters (-x and the like) and --call are
knobs of the kit, written here; an event's call comes to record() as its
name. A driver declares what is its own: its options, which calls some
kernels lack, its columns and how an event becomes a record.
"""
import argparse

from . import kernel, libbpf
from .bpfobject import Later, object_types
from .btf import short_name
from .errors import SnoopError
from .tool import Tool

EXIT = "syscall_exit"       # the exit program of every syscall tool


def err(ret):
    """The errno of a syscall's result: -ret for a failure, else 0 (an
    address, like shmat's, is no failure however high its bit)."""
    return -ret if -4096 < ret < 0 else 0


class SyscallTool(Tool):
    # Calls some kernels lack: their programs are left out there. A tuple
    # of names, or "all": the tool needs only the call its exit program is
    # at (syscall.bpf.h SYSCALL_EXIT).
    optional_calls = ()
    other_optional_programs = ()    # the tool's optional programs besides calls' entries
    # --call NAME (add_call_option): a name that stands for several calls
    # (sync_file_range, for its other ABIs' names too), or another spelling
    # of one (umount2), and the calls it means.
    call_aliases = {}

    @property
    def call_values(self):
        """{name: value} of the tool's calls, in the order of its enum call."""
        values = object_types(self.name).enum("call")
        return {short_name(n): values[n] for n in sorted(values, key=values.get)}

    @property
    def calls(self):
        return list(self.call_values)

    @property
    def optional_programs(self):
        calls = self.calls
        names = calls if self.optional_calls == "all" else self.optional_calls
        unknown = set(names) - set(calls)
        if unknown:
            raise SnoopError("internal: %s has no call %s" % (self.name, ", ".join(unknown)))
        return tuple(c + "_enter" for c in names) + self.other_optional_programs

    # -- --call ---------------------------------------------------------------
    def add_call_option(self, parser, help):
        """-c/--call CALL, repeatable: only these calls, in the kernel.
        %(calls)s in help stands for the names it takes."""
        action = parser.add_argument("-c", "--call", action="append", type=self.call_name,
                                     metavar="CALL", help=help)
        action.calls = Later(lambda: ", ".join(self.call_names()))

    def call_names(self):
        """The names --call lists in its help and errors: each call's, but
        those another call's name stands for."""
        calls = self.calls
        hidden = {c for name, means in self.call_aliases.items() if name in calls
                  for c in means if c != name}
        return [c for c in calls if c not in hidden]

    def call_name(self, text):
        if text not in self.calls and text not in self.call_aliases:
            raise argparse.ArgumentTypeError("invalid call %r: one of %s"
                                             % (text, ", ".join(self.call_names())))
        return text

    def calls_mask(self, names):
        """The kit's calls_mask knob for these --call names."""
        values = self.call_values
        return sum({1 << values[c] for name in names
                    for c in self.call_aliases.get(name, (name,))})

    # -- Tool's hooks -----------------------------------------------------------
    def configure(self, obj, args):
        """The kit's knobs: -x (args.failed) and --call (args.call). A
        driver's own configure() calls this first."""
        knobs = {}
        if getattr(args, "failed", False):
            knobs["failed_only"] = True
        if getattr(args, "call", None):
            knobs["calls_mask"] = self.calls_mask(args.call)
        if knobs:
            obj.set_rodata(**knobs)

    def attach(self, obj, args):
        """The entry programs (libbpf, by their sections), and the exit at
        every call's sys_exit tracepoint this kernel has."""
        super().attach(obj, args)
        # a tool with variants has an exit program of each (syscall.bpf.h
        # SYSCALL_EXIT_VARIANT): the one loaded
        exit, section = next((name, s) for name, s, prog in obj.programs()
                             if name in (EXIT, "%s_%s" % (EXIT, self.variant))
                             and libbpf.load().bpf_program__autoload(prog))
        for call in self.calls:
            event = "sys_exit_" + call
            if not section.endswith("/" + event) and kernel.tracepoint_exists("syscalls", event):
                obj.attach_tracepoint(exit, "syscalls/" + event)
