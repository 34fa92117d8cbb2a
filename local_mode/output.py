"""Keeping the handlers' own output (powertools JSON logs, EMF metrics, child processes) out of the report."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def stdout_to_file(path: Path) -> Iterator[None]:
    """Point file descriptor 1 at `path` for the block, so that whatever anything in this process (or a child)
    writes to stdout lands there; the real stdout comes back afterwards."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(path, "wb") as log:
            os.dup2(log.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
