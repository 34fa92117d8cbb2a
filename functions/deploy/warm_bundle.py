"""Deploy: the bundle folder of the last ship, kept in the function's ephemeral storage for the next one.

Lambda keeps /tmp between the invocations of one execution environment, and the ships of a deployment follow each
other (its lock), mostly in the same warm environment. So the folder a ship gathered is left there with a record
of what each file is: the key and ETag its bytes came from, its size, and the size and modification time it was
written with. The next ship of the same prefix takes it over and keeps a file only when the listing still names
that key with that ETag and size, and the file on disk is untouched; every other file is removed and gathered
again. A push of one repo then reads only what changed, whatever the number of repos beside it.

The kept bundle is one folder, moved by rename: taken whole by one invocation, or not at all (another invocation
of the same process holds it in the local mode, or none was kept). Anything unexpected (a record that cannot be
read, a bundle of another prefix) means gathering from S3 as a new environment does: never a wrong file.
"""

import json
import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from functions.shared.records import FrozenRecord

KEPT_FOLDER = "kept-bundle"
RECORD_FILE = "bundle.json"
BUNDLE_FOLDER = "dags"


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


def claim_kept_bundle(storage: Path, folder: Path, bucket: str, prefix: str) -> dict[str, WrittenFile]:
    """Move the bundle kept in `storage` to `folder` (which must not exist) if it was gathered from
    s3://bucket/prefix; return its files by path. Any other kept bundle is removed: the function's storage holds one."""
    claimed = folder.with_name(folder.name + ".kept")
    try:
        os.rename(storage / KEPT_FOLDER, claimed)
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


def keep_bundle(storage: Path, folder: Path, bucket: str, prefix: str, files: Mapping[str, WrittenFile]) -> bool:
    """Leave `folder`, which holds exactly `files`, in `storage` for the next ship; False when it cannot (another
    bundle was kept meanwhile, or the storage is full): the caller's removal of its work folder takes it then."""
    staging = folder.with_name(folder.name + ".keep")
    record = {"bucket": bucket, "prefix": prefix,
              "files": {path: [entry.key, entry.etag, entry.size, entry.mtime_ns] for path, entry in files.items()}}
    try:
        staging.mkdir()
        (staging / RECORD_FILE).write_text(json.dumps(record))
        os.rename(folder, staging / BUNDLE_FOLDER)
        os.rename(staging, storage / KEPT_FOLDER)
    except OSError:
        return False
    return True


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
