"""A trash directory: a tree leaves its place with one rename, and is removed afterwards, in a thread.

The rename is the point of no return: a crash after it leaves an entry here, which the next start
removes. Removal uses daemon.files.trees (no recursion, any depth). It never raises: what cannot be
removed now (a mount point inside, an immutable file) is logged and stays for the next try.
"""

import errno
import logging
import os
import threading
import uuid
from pathlib import Path

from daemon.files.trees import remove_tree

log = logging.getLogger(__name__)


class Trash:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        self._busy: set[str] = set()  # entries a thread is removing: no two threads on one tree
        self._purger: threading.Thread | None = None
        self._again = False

    def discard(self, path: Path) -> str | None:
        """Move `path` in here (one rename); the name of its entry, or None when `path` was absent or
        on another file system (then it is removed in place, at once). OSError when neither works."""
        name = uuid.uuid4().hex
        try:
            os.rename(path, self.root / name)
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
            remove_tree(path)
            return None
        return name

    def purge_entry(self, name: str) -> bool:
        """Remove one entry now (blocking); False when some of it is still there (already logged)."""
        with self._lock:
            if name in self._busy:
                return False  # another thread is at it
            self._busy.add(name)
        try:
            remove_tree(self.root / name)
            return True
        except OSError as e:
            log.warning("cannot remove %s yet: %s", self.root / name, e)
            return False
        finally:
            with self._lock:
                self._busy.discard(name)

    def purge(self) -> bool:
        """Remove everything in here now (blocking); False when something is left."""
        try:
            names = os.listdir(self.root)
        except OSError as e:
            log.warning("cannot list the trash %s: %s", self.root, e)
            return False
        ok = True
        for name in names:
            ok = self.purge_entry(name) and ok
        return ok

    def purge_soon(self) -> None:
        """purge() in a background thread; one at a time, another round if asked again meanwhile."""
        with self._lock:
            if self._purger is not None:
                self._again = True
                return
            self._purger = threading.Thread(target=self._purge_rounds, name="trash", daemon=True)
            self._purger.start()

    def _purge_rounds(self) -> None:
        while True:
            self.purge()
            with self._lock:
                if not self._again:
                    self._purger = None
                    return
                self._again = False
