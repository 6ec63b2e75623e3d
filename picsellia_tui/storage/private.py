"""Private folders and files of the workspace, without ever changing a mode on a
path the tool did not create.

A `data_dir` or `database` in the config may name anything: an existing project
folder, `/tmp`, `/etc`. What we create, we create private (0700 folders, 0600
files: the mode is given at creation, so no chmod is needed). What exists already
is checked, never chmod'ed: not ours, or writable by other users, is refused with
one line (another user could swap our files); readable by others is accepted
with a one-line warning.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path


class UnsafePath(Exception):
    """A path the workspace cannot use safely; one line for the user."""


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def check_existing(path: Path, what: str, *, kind: str) -> os.stat_result:
    """Refuse `path` (followed if a symlink: a data dir may live on another disk)
    unless it is a `kind` ('dir' or 'file') of ours that other users cannot
    write; warn when they can read it."""
    try:
        st = path.stat()
    except OSError as exc:
        raise UnsafePath(f"{what} {path}: {exc.strerror or exc}") from None
    is_kind = stat.S_ISDIR(st.st_mode) if kind == "dir" else stat.S_ISREG(st.st_mode)
    if not is_kind:
        noun = "a folder" if kind == "dir" else "a regular file"
        raise UnsafePath(f"{what} {path} is not {noun}")
    if st.st_uid != os.geteuid():
        raise UnsafePath(
            f"{what} {path} belongs to {_owner(st.st_uid)}, not to you: use one of your own"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        raise UnsafePath(
            f"{what} {path} is writable by other users (mode {mode:04o}): use a private "
            f"{'folder' if kind == 'dir' else 'file'}, or chmod go-w it if that is safe"
        )
    if mode & 0o044:
        # To the user, not to the engine's log file: it is theirs to act on.
        print(
            f"warning: {what} {path} can be read by other users (mode {mode:04o}); "
            "chmod go-rwx it to keep it private",
            file=sys.stderr,
        )
    return st


def private_dir(path: Path, what: str = "folder") -> Path:
    """`path` as a folder of ours: created 0700 if missing (its missing parents
    get the usual umask modes), else checked as above."""
    path = path.expanduser()
    try:
        path.mkdir(mode=0o700)
        return path
    except FileExistsError:
        pass
    except FileNotFoundError:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir(mode=0o700)
            return path
        except FileExistsError:
            pass  # created by a racing process meanwhile: check it below
        except OSError as exc:
            raise UnsafePath(f"{what} {path} cannot be created: {exc.strerror or exc}") from None
    except OSError as exc:
        raise UnsafePath(f"{what} {path} cannot be created: {exc.strerror or exc}") from None
    check_existing(path, what, kind="dir")
    return path


def private_file(path: Path, what: str = "file") -> bool:
    """Make `path` exist as a file of ours: created empty 0600 (never through a
    symlink) if missing, else checked as above. True when created here."""
    path = path.expanduser()
    if not path.exists() and not path.is_symlink():
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
            os.close(fd)
            return True
        except FileExistsError:
            pass  # a racing process made it: check it like any existing file
        except OSError as exc:
            raise UnsafePath(f"{what} {path} cannot be created: {exc.strerror or exc}") from None
    check_existing(path, what, kind="file")
    return False


def open_private_append(path: Path) -> int:
    """An O_APPEND descriptor on `path` in a folder of ours: created 0600, never
    through a symlink (O_NOFOLLOW), and refused if it is not our regular file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise UnsafePath(f"{path} is not a regular file of yours")
    except BaseException:
        os.close(fd)
        raise
    return fd
