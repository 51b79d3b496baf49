"""maskprep: honest statistics, loss weights and multi-hot planes for
segmentation masks.

The command line (``maskprep stats DIR``, ...) and the same stages as
Python calls: :func:`labels`, :func:`stats`, :func:`weights`,
:func:`score`, :func:`check` and
:class:`LabelMap` (``decode`` / ``decode_index`` for a ``Dataset``).
Errors raise :class:`MaskprepError` (a ``ValueError``) with the command's
messages; a file that cannot be read or written raises
:class:`MaskprepIOError`, both a ``MaskprepError`` and an ``OSError``.
"""

import signal
import sys

from ._maskprep import (
    LabelMap,
    MaskprepError,
    MaskprepIOError,
    check,
    labels,
    score,
    stats,
    weights,
)
from ._maskprep import main as _main

__all__ = [
    "LabelMap",
    "MaskprepError",
    "MaskprepIOError",
    "check",
    "labels",
    "main",
    "score",
    "stats",
    "weights",
]


def main(argv=None):
    """Runs the ``maskprep`` command line (``argv`` without the program
    name; ``sys.argv[1:]`` by default) and returns its exit code."""
    if argv is None:
        argv = sys.argv[1:]
        # Ctrl-C stops a run the way it stops the binary.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    return _main(["maskprep", *(str(a) for a in argv)])
