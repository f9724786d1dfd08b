"""snooptools: the shared library of the snoop tools.

A tool subclasses Tool (tool.py) and declares its columns with Column
(output.py); the rest of the package loads, filters, reads and prints.
"""
__version__ = "0.1.0"       # as pyproject.toml says

from .errors import SnoopError, UsageError
from .output import Column, kstr
from .cli import millis
from .startup import Refused, vma_variants
from .tool import Tool

__all__ = ["Column", "Refused", "SnoopError", "Tool", "UsageError", "kstr", "millis",
           "vma_variants"]
