"""Deploy: each invocation's work folder in the function's ephemeral storage, and the folders left behind.

An invocation works in a folder of its own, removed when it ends. But Lambda stops a timed-out (or crashed)
invocation by resetting its environment's runtime: no `finally` runs, and "the Lambda reset does not clear the /tmp
directory content prior to the next init phase" (Lambda's execution environment documentation).
Such a folder holds a bundle's files (room the next gathering needs) and the CLI's config, where the CLI writes the
token. So a folder is held while in use, by a lock on its IN_USE_FILE, and each invocation first removes the work
folders nobody holds. A folder is made and locked under another name, then renamed: one named as a work folder is
always held or abandoned, never about to be held. In Lambda one invocation runs at a time in an environment; in the local mode several run in
one process, each holding its own folder's lock (a lock belongs to its open file, so threads exclude each other).
"""

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WORK_PREFIX = "astro-deploy-"
MAKING_PREFIX = ".making-astro-deploy-"
IN_USE_FILE = ".in-use"


def remove_abandoned(storage: Path) -> list[Path]:
    """Remove the work folders in `storage` that no running invocation holds; return them."""
    removed = []
    for folder in storage.glob(f"{WORK_PREFIX}*"):
        try:
            in_use = os.open(folder / IN_USE_FILE, os.O_RDWR)
        except OSError:
            continue  # not a work folder
        try:
            fcntl.flock(in_use, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        finally:
            os.close(in_use)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


@contextmanager
def work_folder(storage: Path) -> Iterator[Path]:
    """A new folder in `storage`, held while the block runs and removed after it; raises OSError if it cannot be
    made."""
    # Made and held under another name first: a folder named as a work folder is always held, or abandoned.
    making = Path(tempfile.mkdtemp(prefix=MAKING_PREFIX, dir=storage))
    work = making
    in_use = os.open(making / IN_USE_FILE, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(in_use, fcntl.LOCK_EX)
        named = making.with_name(WORK_PREFIX + making.name.removeprefix(MAKING_PREFIX))
        os.rename(making, named)
        work = named
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.close(in_use)
