"""Unpack one image layer tar into a directory that overlayfs can use as a lower dir.

Blocking code: call it from a thread. Every path is resolved component by component with O_NOFOLLOW
directory fds, so neither "..", nor a symlink planted by an earlier entry can make us write outside the
root. OCI whiteouts become overlayfs whiteouts (char device 0/0, trusted.overlay.opaque=y).

Memory stays the same whatever the number of entries: the tar is read one entry at a time
(daemon.images.tarstream), and a directory gets its metadata when its entry comes; since creating or
removing a child changes a directory's times, the parent's times are put back after each entry.
Holes in sparse files stay holes. The uncompressed stream of one layer is capped (`max_bytes`).

Every refusal is a LayerError (400): a malformed tar in Go's words ("archive/tar: invalid tar
header"), a file-system error in the form Docker reports it ("link /d /l: operation not permitted"),
with paths inside the layer only. Out of space and I/O errors are the host's: 500s, in the same form.
"""

import errno
import gzip
import hashlib
import logging
import lzma
import os
import posixpath
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import InvalidParameter, SystemError_
from daemon.files.trees import remove_tree
from daemon.images.decompress import decompressed
from daemon.images.tarstream import (
    BLOCKDEV,
    CHAR,
    DIR,
    ERR_EOF,
    FIFO,
    GLOBAL,
    HANDLED_TYPES,
    LINK,
    REG,
    SYMLINK,
    Readable,
    TarEntry,
    TarFormatError,
    TarReader,
    unhandled_type,
)

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
CHUNK = 1 << 20
# Above the largest layer a registry accepts (Amazon ECR: 52,000 MiB; GHCR and Docker Hub: 10 GB).
DEFAULT_MAX_LAYER_BYTES = 64 << 30
_MAX_ID = (1 << 32) - 2  # (uid_t)-1 means "leave unchanged" to chown(2)
_MAX_DEV = (1 << 32) - 1
_MAX_TIME_NS = (1 << 63) - 1

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Out of space, I/O error, out of fds or memory: the daemon's trouble, not the layer's.
_HOST_ERRNOS = frozenset(
    (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM, errno.EMFILE, errno.ENFILE)
)

_CREATE_OPS = {REG: "open", DIR: "mkdir", SYMLINK: "symlink", LINK: "link"}

__all__ = [
    "DEFAULT_MAX_LAYER_BYTES",
    "LayerError",
    "LayerResult",
    "Readable",
    "clean_parts",
    "extract_layer",
]


class LayerError(InvalidParameter):
    """A layer tar we refuse to unpack (unsafe or malformed)."""


@dataclass(frozen=True)
class LayerResult:
    diff_id: str  # sha256 of the uncompressed tar stream
    size: int  # bytes of regular file content


class _Hashing:
    """Hashes everything read through it (the diff ID is the digest of the uncompressed stream), and
    refuses to read more than `limit` bytes: a gzip bomb stops here, whatever its entries are."""

    def __init__(self, src: Readable, limit: int) -> None:
        self._src = src
        self._limit = limit
        self.total = 0
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self.total += len(data)
        if self.total > self._limit:
            raise LayerError(
                f"layer too large: its uncompressed tar exceeds {_human(self._limit)}, "
                "the daemon's --max-layer-size"
            )
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def _human(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def clean_parts(name: str) -> list[str]:
    """Lexically cleans a member name; rejects names that climb out of the root.

    Absolute names are taken relative to the root, as Docker does (filepath.Join(dest, name)).
    """
    norm = posixpath.normpath("./" + name.lstrip("/"))
    if norm == ".":
        return []
    if norm == ".." or norm.startswith("../"):
        raise LayerError(f"invalid layer: path {name!r} escapes the layer root")
    return norm.split("/")


def _shown(parts: list[str]) -> str:
    """A path as Docker shows it in errors: from the layer's root (it unpacks in a chroot)."""
    return "/" + "/".join(parts)


def _time_ns(ns: int) -> int:
    """Docker's boundTime: a time utimensat cannot take becomes the epoch."""
    return ns if 0 <= ns <= _MAX_TIME_NS else 0


class _Extractor:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root_fd = os.open(root, _DIR_FLAGS)
        self.size = 0
        self._cached: tuple[tuple[str, ...], int] | None = None
        self._is_root = os.geteuid() == 0
        self.doing = ""  # the operation under way, for the message of an OSError: "open /etc/x"

    def close(self) -> None:
        self._drop_cache()
        os.close(self.root_fd)

    def _drop_cache(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def _walk(self, parts: list[str], create: bool) -> int:
        """A new fd for the directory at `parts`, never following a symlink on the way."""
        fd = os.dup(self.root_fd)
        try:
            for i, comp in enumerate(parts):
                try:
                    nxt = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise LayerError(
                            f"invalid layer: {'/'.join(parts[: i + 1])!r} does not exist"
                        ) from None
                    self.doing = f"mkdir {_shown(parts[: i + 1])}"
                    times = os.fstat(fd)
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    os.utime(fd, ns=(times.st_atime_ns, times.st_mtime_ns))
                    nxt = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                    os.fchmod(nxt, 0o755)  # not subject to the umask
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        is_link = stat.S_ISLNK(os.lstat(comp, dir_fd=fd).st_mode)
                        what = "a symlink" if is_link else "not a directory"
                        raise LayerError(
                            f"invalid layer: parent {'/'.join(parts[: i + 1])!r} of an entry is {what}"
                        ) from None
                    self.doing = f"open {_shown(parts[: i + 1])}"
                    raise
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _parent(self, parts: list[str]) -> int:
        """The (cached) fd of a member's parent directory; the cache holds only the last one."""
        key = tuple(parts)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        fd = self._walk(parts, create=True)
        self._drop_cache()
        self._cached = (key, fd)
        return fd

    def _remove(self, pfd: int, name: str, parts: list[str]) -> None:
        """Removes an entry; `pfd` is invalid afterwards (callers ask _parent again)."""
        try:
            st = os.lstat(name, dir_fd=pfd)
        except FileNotFoundError:
            return
        self.doing = f"unlinkat {_shown(parts)}"
        if stat.S_ISDIR(st.st_mode):
            remove_tree(name, dir_fd=pfd)
        else:
            os.unlink(name, dir_fd=pfd)
        self._drop_cache()  # the removed entry may have been a directory on the cached path

    def add(self, reader: TarReader, e: TarEntry) -> None:
        if e.type == GLOBAL:
            return  # PAX global headers: Docker ignores them
        if e.type not in HANDLED_TYPES:
            raise unhandled_type(e.type)
        parts = clean_parts(e.name)
        if not parts:
            return  # the root itself: keep ours, as Docker does
        if parts[0].startswith(WHITEOUT_META_PREFIX) and parts != [OPAQUE_MARKER]:
            return  # aufs bookkeeping (.wh..wh.plnk, ...): meaningless for overlayfs
        self._check_ids(e, parts)
        parents, base = parts[:-1], parts[-1]
        pfd = self._parent(parents)
        times = os.fstat(pfd)  # put back below: a new child changes its parent's times
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(pfd, parents, base, e)
        else:
            self._entry(reader, pfd, parts, e)
        pfd = self._parent(parents)
        os.utime(pfd, ns=(times.st_atime_ns, times.st_mtime_ns))

    def _check_ids(self, e: TarEntry, parts: list[str]) -> None:
        """Values the system calls below cannot take, refused in the words the kernel would use."""
        if not (0 <= e.uid <= _MAX_ID and 0 <= e.gid <= _MAX_ID):
            raise LayerError(
                f'failed to Lchown "{_shown(parts)}" for UID {e.uid}, GID {e.gid}: '
                f"lchown {_shown(parts)}: invalid argument"
            )
        if e.type in (CHAR, BLOCKDEV) and not (0 <= e.devmajor <= _MAX_DEV and 0 <= e.devminor <= _MAX_DEV):
            raise LayerError(f"mknod {_shown(parts)}: invalid argument")

    def _entry(self, reader: TarReader, pfd: int, parts: list[str], e: TarEntry) -> None:
        parents, base = parts[:-1], parts[-1]
        shown = _shown(parts)
        self.doing = f"{_CREATE_OPS.get(e.type, 'mknod')} {shown}"  # what Docker names a bad name by
        try:
            existing = os.lstat(base, dir_fd=pfd)
        except FileNotFoundError:
            existing = None
        if existing is not None and not (stat.S_ISDIR(existing.st_mode) and e.type == DIR):
            self._remove(pfd, base, parts)
            pfd = self._parent(parents)
        if e.type == DIR:
            self.doing = f"mkdir {shown}"
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(base, 0o700, dir_fd=pfd)
            fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
            try:
                self._metadata_fd(fd, shown, e, directory=True)
            finally:
                os.close(fd)
        elif e.type == REG:
            self._regular(reader, pfd, base, shown, e)
        elif e.type == SYMLINK:
            self.doing = f"symlink {e.linkname} {shown}"
            os.symlink(e.linkname, base, dir_fd=pfd)
            self._metadata_by_name(pfd, base, shown, e, symlink=True)
        elif e.type == LINK:
            self._hardlink(pfd, base, shown, e)
        elif e.type in (CHAR, BLOCKDEV, FIFO):
            self.doing = f"mknod {shown}"
            if e.type == FIFO:
                os.mkfifo(base, 0o600, dir_fd=pfd)
            else:
                kind = stat.S_IFCHR if e.type == CHAR else stat.S_IFBLK
                os.mknod(base, kind | 0o600, os.makedev(e.devmajor, e.devminor), dir_fd=pfd)
            self._metadata_by_name(pfd, base, shown, e, symlink=False)

    def _whiteout(self, pfd: int, parents: list[str], base: str, e: TarEntry) -> None:
        if base == OPAQUE_MARKER:
            self.doing = f"setxattr {_shown(parents)}"
            os.setxattr(pfd, OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # other aufs metadata: meaningless for overlayfs
        name = base[len(WHITEOUT_PREFIX) :]
        if name in ("", ".", ".."):
            raise LayerError(f"invalid layer: bad whiteout {e.name!r}")
        self._remove(pfd, name, [*parents, name])
        pfd = self._parent(parents)
        self.doing = f"mknod {_shown([*parents, name])}"
        os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)
        self._chown(name, e, _shown([*parents, name]), dir_fd=pfd)

    def _regular(self, reader: TarReader, pfd: int, base: str, shown: str, e: TarEntry) -> None:
        self.doing = f"open {shown}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(base, flags, 0o600, dir_fd=pfd)
        try:
            self.doing = f"write {shown}"
            if e.segments is None:
                while data := reader.read(CHUNK):
                    _write_all(fd, data)
            else:
                for offset, length in e.segments:  # data at its place, holes left as holes
                    done = 0
                    while done < length:
                        data = reader.read(min(CHUNK, length - done))
                        if not data:  # cannot happen: the reader checked the map against the data
                            raise TarFormatError(ERR_EOF)
                        _pwrite_all(fd, data, offset + done)
                        done += len(data)
                os.ftruncate(fd, e.size)
            self.size += e.size
            self._metadata_fd(fd, shown, e, directory=False)
        finally:
            os.close(fd)

    def _hardlink(self, pfd: int, base: str, shown: str, e: TarEntry) -> None:
        target = clean_parts(e.linkname)
        if not target:
            raise LayerError(f"invalid layer: hardlink {e.name!r} to the root")
        tfd = self._walk(target[:-1], create=False)
        try:
            self.doing = f"link {_shown(target)} {shown}"
            os.link(target[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            raise LayerError(f"invalid layer: hardlink target {e.linkname!r} does not exist") from None
        finally:
            os.close(tfd)

    def _metadata_fd(self, fd: int, shown: str, e: TarEntry, directory: bool) -> None:
        self._chown(fd, e, shown)
        self.doing = f"chmod {shown}"
        mode = e.mode & 0o7777
        if directory and not self._is_root:
            mode |= 0o700  # unprivileged unpacking (tests) must still create the children
        os.fchmod(fd, mode)  # after chown, which clears setuid/setgid
        self._xattrs(fd, e)
        self.doing = f"chtimes {shown}"
        os.utime(fd, ns=(_time_ns(e.mtime_ns),) * 2)

    def _metadata_by_name(self, pfd: int, base: str, shown: str, e: TarEntry, symlink: bool) -> None:
        self._chown(base, e, shown, dir_fd=pfd)
        if not symlink:  # Linux has no lchmod; a symlink's mode means nothing anyway
            self.doing = f"chmod {shown}"
            os.chmod(base, e.mode & 0o7777, dir_fd=pfd)
        self._xattrs(f"/proc/self/fd/{pfd}/{base}", e)
        self.doing = f"chtimes {shown}"
        os.utime(base, ns=(_time_ns(e.mtime_ns),) * 2, dir_fd=pfd, follow_symlinks=False)

    def _chown(self, target: int | str, e: TarEntry, shown: str, dir_fd: int | None = None) -> None:
        self.doing = f"lchown {shown}"
        try:
            if isinstance(target, int):
                os.fchown(target, e.uid, e.gid)
            else:
                os.chown(target, e.uid, e.gid, dir_fd=dir_fd, follow_symlinks=False)
        except PermissionError:
            if self._is_root:
                raise  # unprivileged unpacking (tests) keeps our own ownership

    def _xattrs(self, target: int | str, e: TarEntry) -> None:
        for name, value in e.xattrs.items():
            if name.startswith("trusted.overlay."):
                continue  # overlayfs' own (redirects, opaque): a layer must not steer the stack
            try:
                if isinstance(target, int):
                    os.setxattr(target, name, value)
                else:
                    os.setxattr(target, name, value, follow_symlinks=False)
            except (OSError, ValueError) as err:  # no xattrs here, a namespace we may not write
                log.debug("cannot set xattr %s on %s: %s", name, e.name, err)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _os_error(doing: str, e: OSError) -> InvalidParameter | SystemError_:
    """An OSError in Docker's form: "<operation> <layer path>: <reason>", with no path of ours."""
    reason = os.strerror(e.errno) if e.errno else str(e)
    reason = reason[:1].lower() + reason[1:]
    message = f"{doing}: {reason}" if doing else reason
    if e.errno in _HOST_ERRNOS:
        return SystemError_(message)
    return LayerError(message)


def extract_layer(src: Readable, dest: Path, max_bytes: int = DEFAULT_MAX_LAYER_BYTES) -> LayerResult:
    """Unpacks a (possibly compressed) layer tar into `dest`, an empty directory made if missing.

    Returns the diff ID, computed over every byte of the uncompressed tar including its padding.
    Refuses a layer whose uncompressed tar is larger than `max_bytes`.
    """
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o755)  # the root of the container's filesystem, unless a lower layer says otherwise
    ex = _Extractor(dest)
    try:
        try:
            hashing = _Hashing(decompressed(src), max_bytes)
            reader = TarReader(hashing)
            for entry in reader:
                ex.add(reader, entry)
            hashing.drain()
        except TarFormatError as e:
            raise LayerError(e.message) from e
        except ConnectionError:
            raise  # the client went away in the middle of its upload: not the layer's fault
        except EOFError as e:  # a compressed stream cut short
            raise LayerError(ERR_EOF) from e
        except (gzip.BadGzipFile, lzma.LZMAError, zlib.error) as e:
            raise LayerError(f"invalid layer: {e}") from e
        except OSError as e:
            if e.errno is None:  # bz2 reports bad data so
                raise LayerError(f"invalid layer: {e}") from e
            raise _os_error(ex.doing, e) from e
    finally:
        ex.close()
    return LayerResult("sha256:" + hashing.hash.hexdigest(), ex.size)
