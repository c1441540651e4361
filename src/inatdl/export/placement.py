"""Photos put in OUT_DIR as files: hard links while the file system allows them, copies
after (or with --copy); a file linked to the data dir is never written into."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from inatdl.export.model import ExportReport
from inatdl.export.outdir import OTHER_OUT_DIR
from inatdl.files import disk_error

#: os.link's errors across two file systems or on one without hard links: EINVAL is what
#: Windows gives on FAT and exFAT drives ("[WinError 1] Incorrect function"), ENOSYS some
#: FUSE file systems.
_LINK_FAILURES = {
    errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EACCES,
    errno.EINVAL, errno.ENOSYS,
}  # fmt: skip


class Placer:
    """Hard links while the file system allows them, copies after (or with --copy)."""

    def __init__(self, copy: bool) -> None:
        self.copy = copy
        self.can_link = not copy
        self.linked = 0
        self.copied = 0
        self.folders: set[str] = set()

    def place(self, source: str, target: str, report: ExportReport) -> None:
        """Plain-string paths: pathlib costs more than the links themselves at 36,000 photos."""
        try:
            if self._current(source, target):
                report.kept += 1
                return
            folder, name = os.path.split(target)
            if folder not in self.folders:
                os.makedirs(folder, exist_ok=True)
                self.folders.add(folder)
            temporary = os.path.join(folder, f".{name}.part")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            if self.can_link:
                try:
                    os.link(source, temporary)
                    self.linked += 1
                except OSError as exc:
                    if exc.errno not in _LINK_FAILURES:
                        raise
                    self.can_link = False
            if not self.can_link:
                shutil.copyfile(source, temporary)
                self.copied += 1
            # A new name replaces the old one: a file linked to the data dir is never written into.
            os.replace(temporary, target)
            report.added += 1
        except OSError as exc:
            raise disk_error(exc, Path(target), OTHER_OUT_DIR) from None

    def _current(self, source: str, target: str) -> bool:
        """True when ``target`` already holds this photo (and is a copy when copies are asked)."""
        try:
            there = os.stat(target)
        except FileNotFoundError:
            return False
        here = os.stat(source)
        if there.st_size != here.st_size:
            return False
        same_file = (there.st_dev, there.st_ino) == (here.st_dev, here.st_ino)
        return not (self.copy and same_file)
