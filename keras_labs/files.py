"""Atomic writes: a reader (or a run killed half-way) sees the old file or folder or the whole
new one, never a half-written one."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def atomic_write(path: str | os.PathLike, content: str | bytes) -> Path:
    """Writes `content` to `path` through a temporary file in the same folder, then renames it.

    Returns:
        The path written.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb" if isinstance(content, bytes) else "w") as stream:
            stream.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def staged_folder(destination: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """A fresh folder next to `destination` that becomes `destination` when the block ends well.

    Args:
        destination: The folder to create. Its parent is created if missing.
        replace: Swap out an existing `destination`; the old one stays as
            `<destination>.previous` until the new one is in place. Otherwise an existing `destination` is kept and `FileExistsError`
            is raised, so two writers racing for the same folder never mix their files.

    Yields:
        The staging folder to write into; it is deleted whatever happens.

    Raises:
        OSError: The parent cannot be created or written.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.partial-",
                                    dir=destination.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp's owner-only mode would outlive the rename
    try:
        yield staging
        if replace and destination.exists():
            # The old folder waits as `<name>.previous` until the new one is in place, so a
            # reader that falls back to it (`training.Backup`) finds a whole one at every instant.
            previous = destination.with_name(destination.name + ".previous")
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(destination, previous)
            try:
                os.rename(staging, destination)
            except OSError:
                os.replace(previous, destination)
                raise
            shutil.rmtree(previous, ignore_errors=True)
        else:
            if destination.exists():
                raise FileExistsError(f"{str(destination)!r} exists already")
            os.rename(staging, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
