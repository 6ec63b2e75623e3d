"""Where an unexpected error's traceback goes: the user's own state folder.

Not a fixed name in the shared temp folder: another user could plant a symlink
there and have us append to a file of ours. The folder is created 0700 (an
existing one must be ours and closed to others) and the file is opened with
O_NOFOLLOW, 0600. Standard library and platformdirs only: this runs after a
failure, possibly of an import.
"""

from __future__ import annotations

import os
import stat
import traceback
from pathlib import Path

import platformdirs

from picsellia_tui.storage.private import UnsafePath, open_private_append

APP = "picsellia-tui"


def crash_log_path() -> Path:
    return Path(platformdirs.user_state_dir(APP)) / "crash.log"


def write_crash_log(exc: BaseException) -> tuple[Path | None, str | None]:
    """Append `exc`'s traceback to the crash log: (path, None) when written,
    (None, why not) when the folder or the file cannot be trusted."""
    path = crash_log_path()
    try:
        _state_dir(path.parent)
        fd = open_private_append(path)
    except (OSError, UnsafePath) as exc2:
        reason = exc2.strerror if isinstance(exc2, OSError) and exc2.strerror else str(exc2)
        return None, f"{path}: {reason}"
    with os.fdopen(fd, "a") as f:
        traceback.print_exception(exc, file=f)
    return path, None


def _state_dir(d: Path) -> None:
    try:
        d.mkdir(mode=0o700, parents=True)
        return
    except FileExistsError:
        pass
    st = d.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise UnsafePath(f"{d} is not a private folder of yours")
