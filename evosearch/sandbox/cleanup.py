"""Delete a directory tree a candidate wrote, however it is shaped.

``shutil.rmtree`` recurses once per level: a job that nests a few thousand directories in its
scratch directory (or in a sandbox's private ``/tmp``) makes it raise RecursionError in the
process cleaning up, the host or the warm worker. This walks the tree with one directory
descriptor at a time and a list of names, so depth costs memory, not stack or descriptors;
it never follows a symlink (a link to a host directory is unlinked, not emptied), and a count
bounds the work on a tree built to be huge.
"""

from __future__ import annotations

import os
import stat

MAX_ENTRIES = 2_000_000  # beyond this many entries the rest is left (a tree built to outlast cleanup)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def remove_tree(path: str | os.PathLike[str], max_entries: int = MAX_ENTRIES) -> bool:
    """Remove ``path`` and everything under it; True when nothing is left.

    Never raises for what is inside: an entry that cannot be removed is skipped, and the
    result says whether the tree is gone. A plain file or a symlink at ``path`` is unlinked.
    """
    path = os.fspath(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode):
        return _quietly(os.unlink, path)
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError:
        return False
    names: list[tuple[str, tuple[int, int]]] = []  # the directories we are inside, below ``path``
    stuck: set[tuple[int, int]] = set()  # (device, inode) of entries we could not remove: not tried again
    budget = max_entries
    try:
        while budget > 0:
            child = _empty_one_level(fd, stuck)
            budget -= 1
            if child is not None:  # a subdirectory to go into first
                name, identity = child
                try:
                    inner = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    stuck.add(identity)
                    continue
                os.close(fd)
                fd = inner
                names.append(child)
                continue
            if not names:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            name, identity = names.pop()
            if not _quietly(os.rmdir, name, dir_fd=fd):
                stuck.add(identity)
    finally:
        os.close(fd)
    return _quietly(os.rmdir, path)


def _empty_one_level(fd: int, stuck: set[tuple[int, int]]) -> tuple[str, tuple[int, int]] | None:
    """Unlink every non-directory in the directory ``fd``; return one subdirectory to enter (name, identity)."""
    with os.scandir(fd) as entries:
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                identity = (entry.stat(follow_symlinks=False).st_dev, entry.inode())
            except OSError:
                continue
            if identity in stuck:
                continue
            if is_dir:
                return entry.name, identity
            if not _quietly(os.unlink, entry.name, dir_fd=fd):
                stuck.add(identity)
    return None


def _quietly(action, *args, **kwargs) -> bool:  # noqa: ANN001 - an os function
    try:
        action(*args, **kwargs)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
