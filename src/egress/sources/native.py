"""The package's optional C parts (``setup.py``): where one was built, and the address of a
buffer handed to one."""

from __future__ import annotations

import ctypes
import importlib.machinery
from pathlib import Path


def built_library(module_file: str, name: str) -> Path | None:
    """The C part ``name`` built beside ``module_file`` (the module that loads it), if any."""
    here = Path(module_file).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if (path := here / f"{name}{suffix}").exists():
            return path
    return None


def address(buffer: bytearray) -> int:
    """Where a (non-empty) bytearray's bytes are, for C to read or write them in place."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))
