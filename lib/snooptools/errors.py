"""The errors the library raises. Each tool's entry point turns them into
one line on stderr: ``<tool>: <what failed>: <why> [hint]``."""


class SnoopError(Exception):
    """An environment or kernel problem a user can meet: exit status 1."""

    status = 1

    def __init__(self, what, why="", hint=""):
        super().__init__(what)
        self.what, self.why, self.hint = what, why, hint

    def __str__(self):
        line = self.what
        if self.why:
            line += ": " + self.why
        if self.hint:
            line += " (" + self.hint + ")"
        return line


class LibbpfError(SnoopError):
    """A libbpf call failed; carries the function name and errno."""

    def __init__(self, func, errno, what=None, hint="", log=""):
        import os

        why = os.strerror(errno) if errno else "failed"
        if log:
            why += ": " + log
        super().__init__(what or func + "()", why, hint)
        self.func, self.errno = func, errno


class UsageError(SnoopError):
    """Bad input on the command line: exit status 2 with usage."""

    status = 2
