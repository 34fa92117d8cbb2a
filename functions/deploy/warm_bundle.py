"""Deploy: the bundle folders of the last ships, kept in the function's ephemeral storage for the next ones.

Lambda keeps /tmp between the invocations of one execution environment, and the ships of a deployment follow each
other (its lock), mostly in the same warm environment. So the folder a ship gathered is left there with a record
of what each file is: the key and ETag its bytes came from, its size, and the size and modification time it was
written with. The next ship of the same prefix takes it over and keeps a file only when the listing still names
that key with that ETag and size, and the file on disk is untouched; every other file is removed and gathered
again. A push of one repo then reads only what changed, whatever the number of repos beside it.

One bundle is kept per prefix (a deployment's `main` bundle, a per-repo bundle), so that an environment serving
several deployments or Dag bundles stays warm for each; those kept together hold at most a budget of bytes, the
least recently kept removed first (the budget is taken out of the room Parse allows a bundle, cdk/functions.py).
Each kept bundle is one folder, moved by rename: taken whole by one invocation, or not at all (another invocation of
the same process holds it in the local mode, or none was kept). Anything unexpected (a record that cannot be read,
a folder of another prefix) means gathering from S3 as a new environment does: never a wrong file.
"""

import hashlib
import json
import os
import shutil
import stat
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from functions.shared.records import FrozenRecord

KEPT_FOLDER = "kept-bundles"
RECORD_FILE = "bundle.json"
USAGE_FILE = "usage.json"  # small: what eviction reads
BUNDLE_FOLDER = "dags"
EVICTED_PREFIX = ".evicted-"


class WrittenFile(FrozenRecord):
    """A file of the bundle folder: what it was written from, and how it was left."""

    key: str
    etag: str  # of the bytes written (the GetObject response's, or the archive member's)
    size: int
    mtime_ns: int

    def is_unchanged(self, key: str, etag: str, size: int, on_disk: os.stat_result) -> bool:
        """The listing names the object these bytes came from, and the file is as it was written."""
        return ((self.key, self.etag, self.size) == (key, etag, size) and stat.S_ISREG(on_disk.st_mode)
                and (on_disk.st_size, on_disk.st_mtime_ns) == (self.size, self.mtime_ns))


def written_file(path: Path, key: str, etag: str) -> WrittenFile:
    on_disk = path.stat()
    return WrittenFile(key=key, etag=etag, size=on_disk.st_size, mtime_ns=on_disk.st_mtime_ns)


def kept_path(storage: Path, bucket: str, prefix: str) -> Path:
    """Where the bundle of s3://bucket/prefix is kept (a digest: a prefix may be longer than a file name)."""
    return storage / KEPT_FOLDER / hashlib.sha256(f"{bucket}/{prefix}".encode()).hexdigest()[:32]


def claim_kept_bundle(storage: Path, folder: Path, bucket: str, prefix: str) -> dict[str, WrittenFile]:
    """Move the bundle kept for s3://bucket/prefix to `folder` (which must not exist); return its files by path."""
    claimed = folder.with_name(folder.name + ".kept")
    try:
        os.rename(kept_path(storage, bucket, prefix), claimed)
    except OSError:
        return {}
    try:
        record = json.loads((claimed / RECORD_FILE).read_text())
        if (record["bucket"], record["prefix"]) != (bucket, prefix):
            return {}
        files = {path: WrittenFile(*fields) for path, fields in record["files"].items()}
        os.rename(claimed / BUNDLE_FOLDER, folder)
        return files
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    finally:
        shutil.rmtree(claimed, ignore_errors=True)


def keep_bundle(storage: Path, folder: Path, bucket: str, prefix: str, files: Mapping[str, WrittenFile],
                budget_bytes: int) -> bool:
    """Leave `folder`, which holds exactly `files`, in `storage` for the next ship of the prefix, then remove the
    least recently kept bundles beyond `budget_bytes`. False when it is not kept (empty, larger than the budget alone,
    or another kept for the prefix meanwhile): the caller's removal of its work folder takes it then."""
    size = sum(entry.size for entry in files.values())
    if not files or size > budget_bytes:
        return False
    staging = folder.with_name(folder.name + ".keep")
    record = {"bucket": bucket, "prefix": prefix,
              "files": {path: [entry.key, entry.etag, entry.size, entry.mtime_ns] for path, entry in files.items()}}
    try:
        staging.mkdir()
        (staging / RECORD_FILE).write_text(json.dumps(record))
        (staging / USAGE_FILE).write_text(json.dumps({"bytes": size, "kept_at": time.time()}))
        os.rename(folder, staging / BUNDLE_FOLDER)
        (storage / KEPT_FOLDER).mkdir(exist_ok=True)
        os.rename(staging, kept_path(storage, bucket, prefix))
    except OSError:
        return False
    evict(storage, budget_bytes)
    return True


def _usage(kept: Path) -> tuple[float, int] | None:
    """When the bundle was kept and its bytes; None if its usage cannot be read (a damaged folder)."""
    try:
        usage = json.loads((kept / USAGE_FILE).read_text())
        return float(usage["kept_at"]), int(usage["bytes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def evict(storage: Path, budget_bytes: int) -> list[Path]:
    """Remove the least recently kept bundles until those left hold at most `budget_bytes` (and any damaged one);
    return the removed."""
    try:
        folders = [path for path in (storage / KEPT_FOLDER).iterdir() if not path.name.startswith(EVICTED_PREFIX)]
    except OSError:
        return []
    usages = {path: _usage(path) for path in folders}
    removed = []
    held = 0
    for path, usage in sorted(usages.items(), key=lambda item: item[1] or (0.0, 0), reverse=True):
        held += usage[1] if usage else 0
        if usage is None or held > budget_bytes:
            # Renamed first: an invocation claiming it meanwhile gets it whole or not at all.
            doomed = path.with_name(f"{EVICTED_PREFIX}{uuid.uuid4().hex}")
            try:
                os.rename(path, doomed)
            except OSError:
                continue
            shutil.rmtree(doomed, ignore_errors=True)
            removed.append(path)
    return removed


def remove_all_but(folder: Path, kept: Iterable[str]) -> None:
    """Remove every file of `folder` whose path is not in `kept`, then the folders left empty."""
    keep = set(kept)
    for parent, folders, names in os.walk(folder, topdown=False):
        below = Path(parent).relative_to(folder)
        for name in names:
            if (below / name).as_posix() not in keep:
                os.unlink(Path(parent) / name)
        for name in folders:
            path = Path(parent) / name
            if path.is_symlink():
                os.unlink(path)
            elif not any(path.iterdir()):
                path.rmdir()
