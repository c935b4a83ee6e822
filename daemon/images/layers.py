"""Unpack one image layer tar into a directory that overlayfs can use as a lower dir.

Blocking code: call it from a thread. Every path is resolved component by component with O_NOFOLLOW
directory fds, so neither "..", nor a symlink planted by an earlier entry can make us write outside the
root. OCI whiteouts become overlayfs whiteouts (char device 0/0, trusted.overlay.opaque=y).
"""

import bz2
import errno
import gzip
import hashlib
import logging
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from daemon.errors import InvalidParameter

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
XATTR_PAX_PREFIX = "SCHILY.xattr."
CHUNK = 1 << 20

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class LayerError(InvalidParameter):
    """A layer tar we refuse to unpack (unsafe or malformed)."""


@dataclass(frozen=True)
class LayerResult:
    diff_id: str  # sha256 of the uncompressed tar stream
    size: int  # bytes of regular file content


class _Prepended:
    """Gives back bytes already read for sniffing the compression, then the rest of the stream."""

    def __init__(self, head: bytes, src: Readable) -> None:
        self._head = head
        self._src = src

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                out, self._head = self._head + self._src.read(), b""
                return out
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._src.read(n)


class _Hashing:
    """Hashes everything read through it: the diff ID is the digest of the uncompressed stream."""

    def __init__(self, src: Readable) -> None:
        self._src = src
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def decompressed(src: Readable) -> Readable:
    """Detects gzip/bzip2/xz by their magic numbers; anything else is taken as a plain tar."""
    head = b""
    while len(head) < 6:
        more = src.read(6 - len(head))
        if not more:
            break
        head += more
    stream = _Prepended(head, src)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[call-overload]  # no seek needed for reading
    if head.startswith(b"BZh"):
        return bz2.BZ2File(stream, mode="rb")  # type: ignore[call-overload]  # no seek needed for reading
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(stream, mode="rb")  # type: ignore[arg-type]  # no seek needed for reading
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        raise LayerError("unsupported layer compression: zstd")
    return stream


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


class _Extractor:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root_fd = os.open(root, _DIR_FLAGS)
        self.size = 0
        self._cached: tuple[tuple[str, ...], int] | None = None
        self._dirs: list[tuple[list[str], tarfile.TarInfo]] = []
        self._is_root = os.geteuid() == 0

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
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    nxt = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                    os.fchmod(nxt, 0o755)  # not subject to the umask
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        is_link = stat.S_ISLNK(os.lstat(comp, dir_fd=fd).st_mode)
                        what = "a symlink" if is_link else "not a directory"
                        raise LayerError(
                            f"invalid layer: parent {'/'.join(parts[: i + 1])!r} of an entry is {what}"
                        ) from None
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

    def _remove(self, pfd: int, name: str) -> None:
        """Removes an entry; `pfd` is invalid afterwards (callers ask _parent again)."""
        try:
            st = os.lstat(name, dir_fd=pfd)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=pfd)
        else:
            os.unlink(name, dir_fd=pfd)
        self._drop_cache()  # the removed entry may have been a directory on the cached path

    def add(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = clean_parts(m.name)
        if not parts:
            return  # the root itself: keep ours, as Docker does
        parents, base = parts[:-1], parts[-1]
        pfd = self._parent(parents)
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(pfd, parents, base, m)
            return
        try:
            existing = os.lstat(base, dir_fd=pfd)
        except FileNotFoundError:
            existing = None
        if existing is not None and not (stat.S_ISDIR(existing.st_mode) and m.isdir()):
            self._remove(pfd, base)
            pfd = self._parent(parents)
        if m.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(base, 0o700, dir_fd=pfd)
            self._dirs.append((parts, m))  # metadata once all children exist
        elif m.isreg():
            self._regular(tf, pfd, base, m)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            self._metadata_by_name(pfd, base, m, symlink=True)
        elif m.islnk():
            self._hardlink(pfd, base, m)
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
            self._metadata_by_name(pfd, base, m, symlink=False)
        elif m.isfifo():
            os.mkfifo(base, 0o600, dir_fd=pfd)
            self._metadata_by_name(pfd, base, m, symlink=False)
        else:
            log.debug("skipping tar member %r of type %r", m.name, m.type)

    def _whiteout(self, pfd: int, parents: list[str], base: str, m: tarfile.TarInfo) -> None:
        if base == OPAQUE_MARKER:
            os.setxattr(pfd, OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other aufs metadata (.wh..wh.plnk, ...): meaningless for overlayfs
        name = base[len(WHITEOUT_PREFIX) :]
        if name in ("", ".", ".."):
            raise LayerError(f"invalid layer: bad whiteout {m.name!r}")
        self._remove(pfd, name)
        pfd = self._parent(parents)
        os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)
        self._chown(name, m, dir_fd=pfd)

    def _regular(self, tf: tarfile.TarFile, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(base, flags, 0o600, dir_fd=pfd)
        try:
            src = tf.extractfile(m)
            if src is not None:
                with src, os.fdopen(os.dup(fd), "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
            self.size += m.size
            self._chown(fd, m)
            os.fchmod(fd, m.mode & 0o7777)  # after chown, which clears setuid/setgid
            self._xattrs(fd, m)
            os.utime(fd, ns=(int(m.mtime * 1e9),) * 2)
        finally:
            os.close(fd)

    def _hardlink(self, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        target = clean_parts(m.linkname)
        if not target:
            raise LayerError(f"invalid layer: hardlink {m.name!r} to the root")
        tfd = self._walk(target[:-1], create=False)
        try:
            os.link(target[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            raise LayerError(f"invalid layer: hardlink target {m.linkname!r} does not exist") from None
        finally:
            os.close(tfd)

    def _metadata_by_name(self, pfd: int, base: str, m: tarfile.TarInfo, symlink: bool) -> None:
        self._chown(base, m, dir_fd=pfd)
        if not symlink:  # Linux has no lchmod; a symlink's mode means nothing anyway
            os.chmod(base, m.mode & 0o7777, dir_fd=pfd)
        self._xattrs(f"/proc/self/fd/{pfd}/{base}", m)
        os.utime(base, ns=(int(m.mtime * 1e9),) * 2, dir_fd=pfd, follow_symlinks=False)

    def _chown(self, target: int | str, m: tarfile.TarInfo, dir_fd: int | None = None) -> None:
        try:
            if isinstance(target, int):
                os.fchown(target, m.uid, m.gid)
            else:
                os.chown(target, m.uid, m.gid, dir_fd=dir_fd, follow_symlinks=False)
        except PermissionError:
            if self._is_root:
                raise  # unprivileged unpacking (tests) keeps our own ownership

    def _xattrs(self, target: int | str, m: tarfile.TarInfo) -> None:
        for key, value in m.pax_headers.items():
            if not key.startswith(XATTR_PAX_PREFIX):
                continue
            name = key[len(XATTR_PAX_PREFIX) :]
            if name.startswith("trusted.overlay."):
                continue  # overlayfs' own (redirects, opaque): a layer must not steer the stack
            data = value.encode("utf-8", "surrogateescape")
            try:
                if isinstance(target, int):
                    os.setxattr(target, name, data)
                else:
                    os.setxattr(target, name, data, follow_symlinks=False)
            except OSError as e:  # filesystem without xattrs, or a namespace we may not write
                log.debug("cannot set xattr %s on %s: %s", name, m.name, e)

    def finish(self) -> None:
        """Directory metadata last: creating children would change their mtimes."""
        self._drop_cache()
        for parts, m in self._dirs:
            try:
                fd = self._walk(parts, create=False)
            except LayerError:
                continue  # replaced by a later entry
            try:
                self._chown(fd, m)
                os.fchmod(fd, m.mode & 0o7777)
                self._xattrs(fd, m)
                os.utime(fd, ns=(int(m.mtime * 1e9),) * 2)
            finally:
                os.close(fd)


def extract_layer(src: Readable, dest: Path) -> LayerResult:
    """Unpacks a (possibly compressed) layer tar into `dest`, an empty directory made if missing.

    Returns the diff ID, computed over every byte of the uncompressed tar including its padding.
    """
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o755)  # the root of the container's filesystem, unless a lower layer says otherwise
    hashing = _Hashing(decompressed(src))
    ex = _Extractor(dest)
    try:
        try:
            with tarfile.open(fileobj=hashing, mode="r|") as tf:  # type: ignore[call-overload]
                for member in tf:
                    ex.add(tf, member)
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, lzma.LZMAError) as e:
            raise LayerError(f"invalid layer tar: {e}") from e
        except OSError as e:
            if isinstance(e, LayerError) or e.errno is not None:
                raise
            raise LayerError(f"invalid layer tar: {e}") from e  # bz2 reports bad data so
        ex.finish()
        hashing.drain()
    finally:
        ex.close()
    return LayerResult("sha256:" + hashing.hash.hexdigest(), ex.size)
