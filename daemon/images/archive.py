"""Reading `docker save` archives (blocking; use from a worker thread).

Understands the classic layout (manifest.json, <id>.json, <id>/layer.tar), the Docker 25+ layout
(manifest.json pointing into an OCI blobs/sha256/ tree, with index.json and oci-layout beside it), and
plain OCI image layouts that have only index.json.

The archive (spooled to a file, maybe compressed) is never held in memory, nor the list of its
members: opening it reads every header once (a malformed tar is refused there, in Go's words, as
Docker does), and keeps only manifest.json and index.json. Further files are found by scanning the
headers again for just the names wanted, a batch at a time, following links inside the archive; at
most MAX_INDEXED members are remembered.
"""

import io
import json
import lzma
import os
import posixpath
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from daemon.errors import InvalidParameter
from daemon.files.digest import hex_of, is_digest
from daemon.images.decompress import open_decompressed
from daemon.images.platforms import host_platform
from daemon.images.reference import parse
from daemon.images.tarstream import (
    GLOBAL,
    HANDLED_TYPES,
    LINK,
    REG,
    SYMLINK,
    TarEntry,
    TarReader,
    unhandled_type,
)

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
NAME_ANNOTATION = "io.containerd.image.name"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
MAX_JSON = 16 << 20
MAX_LINK_DEPTH = 16
MAX_INDEXED = 10_000  # members remembered: manifests, configs and layers of every image in the archive
_ROOT_FILES = ("manifest.json", "index.json")
_CHUNK = 1 << 20


@dataclass
class ArchiveImage:
    config: bytes
    layers: list[str]  # archive member names, bottom layer first
    repo_tags: list[str]


def _norm(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


class _MemberReader:
    """One member's content, read from its own handle on the archive; a sparse file's holes are zeros."""

    def __init__(self, f: IO[bytes], entry: TarEntry) -> None:
        self._f = f
        f.seek(entry.data_offset)  # a decompressing file reads its way there
        segments = entry.segments if entry.segments is not None else ((0, entry.size),)
        self._runs: list[tuple[bool, int]] = []  # (is data, length), in file order
        pos = 0
        for offset, length in segments:
            self._runs += [(False, offset - pos), (True, length)]
            pos = offset + length
        self._runs.append((False, entry.size - pos))
        self._runs.reverse()  # pop() from the end

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return b"".join(iter(lambda: self._next(_CHUNK), b""))
        return self._next(n)

    def _next(self, n: int) -> bytes:
        while self._runs and self._runs[-1][1] == 0:
            self._runs.pop()
        if not self._runs or n == 0:
            return b""
        is_data, left = self._runs[-1]
        take = min(n, left)
        if is_data:
            data = self._f.read(take)
            if len(data) < take:
                raise InvalidParameter("invalid tar archive: unexpected EOF")
        else:
            data = bytes(take)
        self._runs[-1] = (is_data, left - take)
        return data

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "_MemberReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SaveArchive:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._index: dict[str, TarEntry] = {}
        self._looked_up: set[str] = set()
        self._lookup(_ROOT_FILES)  # reads every header: a malformed archive is refused here

    def close(self) -> None:
        self._index.clear()

    def __enter__(self) -> "SaveArchive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- finding members ----------------------------------------------------------------------

    def _scan(self, wanted: set[str]) -> None:
        """One pass over the headers, remembering the members named in `wanted` (the last one of a
        name wins, as when unpacking)."""
        try:
            with open_decompressed(str(self._path)) as f:
                size = os.fstat(f.fileno()).st_size if type(f) is io.BufferedReader else None
                for entry in TarReader(f, size):
                    if entry.type not in HANDLED_TYPES:
                        raise unhandled_type(entry.type)  # Docker's untar refuses them
                    name = _norm(entry.name)
                    if entry.type != GLOBAL and name in wanted:
                        self._index[name] = entry
        except EOFError as e:  # a compressed archive cut short
            raise InvalidParameter("unexpected EOF") from e
        except (OSError, lzma.LZMAError, zlib.error) as e:
            raise InvalidParameter(f"invalid tar archive: {e}") from e

    def _lookup(self, names: Iterable[str]) -> None:
        """Finds `names` and what their links point to, in one scan per level of links."""
        todo = {_norm(n) for n in names} - self._looked_up
        for _ in range(MAX_LINK_DEPTH + 1):
            if not todo:
                return
            if len(self._looked_up) + len(todo) > MAX_INDEXED:
                raise InvalidParameter(f"invalid archive: it refers to more than {MAX_INDEXED} files")
            self._looked_up |= todo
            self._scan(todo)
            targets = {self._link_target(n) for n in todo if n in self._index}
            todo = {t for t in targets if t is not None} - self._looked_up

    def _link_target(self, path: str) -> str | None:
        m = self._index[path]
        if m.type == SYMLINK:
            return _norm(posixpath.join(posixpath.dirname(path), m.linkname))
        if m.type == LINK:
            return _norm(m.linkname)
        return None

    def _member(self, name: str) -> TarEntry:
        """The regular file at `name`, following symlinks and hardlinks inside the archive."""
        self._lookup([name])
        path = _norm(name)
        for _ in range(MAX_LINK_DEPTH):
            m = self._index.get(path)
            if m is None:
                raise InvalidParameter(f"invalid archive: {name} not found")
            if m.type == REG:
                return m
            target = self._link_target(path)
            if target is None:
                raise InvalidParameter(f"invalid archive: {name} is not a file")
            path = target
        raise InvalidParameter(f"invalid archive: too many links at {name}")

    def prefetch(self, names: Iterable[str]) -> None:
        """Finds many members in one scan (else each lookup of a new name scans the archive)."""
        self._lookup(names)

    # ---- reading ------------------------------------------------------------------------------

    def open(self, name: str) -> _MemberReader:
        entry = self._member(name)
        return _MemberReader(open_decompressed(str(self._path)), entry)

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        m = self._member(name)
        if m.size > limit:
            raise InvalidParameter(f"invalid archive: {name} is too large")
        with self.open(name) as f:
            return f.read()

    def _json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise InvalidParameter(f"invalid archive: {name}: {e}") from e

    def has(self, name: str) -> bool:
        self._lookup([name])
        return _norm(name) in self._index

    def images(self) -> list[ArchiveImage]:
        if self.has("manifest.json"):
            return self._from_manifest()
        if self.has("index.json"):
            return self._from_oci_index()
        raise InvalidParameter("invalid archive: manifest.json not found")

    def _from_manifest(self) -> list[ArchiveImage]:
        manifest = self._json("manifest.json")
        if not isinstance(manifest, list):
            raise InvalidParameter("invalid archive: manifest.json is not a list")
        for entry in manifest:
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
                raise InvalidParameter("invalid archive: manifest.json entry without Config")
            layers = entry.get("Layers") or []
            tags = entry.get("RepoTags") or []
            if not isinstance(layers, list) or not isinstance(tags, list):
                raise InvalidParameter("invalid archive: bad manifest.json entry")
            if not all(isinstance(x, str) for x in [*layers, *tags]):
                raise InvalidParameter("invalid archive: bad manifest.json entry")
        self.prefetch(name for e in manifest for name in [e["Config"], *(e.get("Layers") or [])])
        return [
            ArchiveImage(self.read(e["Config"]), list(e.get("Layers") or []), list(e.get("RepoTags") or []))
            for e in manifest
        ]

    # ---- plain OCI layout -----------------------------------------------------------------------

    def _blob_path(self, descriptor: Any) -> str:
        digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
        if not isinstance(digest, str) or not is_digest(digest):
            raise InvalidParameter(f"invalid archive: unsupported descriptor {descriptor!r}")
        return f"blobs/sha256/{hex_of(digest)}"

    def _from_oci_index(self) -> list[ArchiveImage]:
        index = self._json("index.json")
        if not isinstance(index, dict) or not isinstance(index.get("manifests") or [], list):
            raise InvalidParameter("invalid archive: bad index.json")
        descs = [d for d in index.get("manifests") or [] if isinstance(d, dict)]
        self.prefetch(_blob_paths(descs))
        picked = [(d, self._pick_manifest(d)) for d in descs]
        wanted: list[str] = []
        for _, manifest in picked:
            if manifest is not None:
                wanted.append(self._blob_path(manifest.get("config")))
                wanted.extend(self._blob_path(layer) for layer in manifest.get("layers") or [])
        self.prefetch(wanted)
        out = []
        for desc, manifest in picked:
            if manifest is None:
                continue
            config = self.read(self._blob_path(manifest.get("config")))
            layers = [self._blob_path(layer) for layer in manifest.get("layers") or []]
            out.append(ArchiveImage(config, layers, _names(desc.get("annotations") or {})))
        if not out:
            raise InvalidParameter("invalid archive: no image for this platform in index.json")
        return out

    def _pick_manifest(self, desc: dict[str, Any]) -> dict[str, Any] | None:
        """Follows nested indexes down to the manifest for this machine's platform."""
        for _ in range(MAX_LINK_DEPTH):
            doc = self._json(self._blob_path(desc))
            if not isinstance(doc, dict):
                return None
            if desc.get("mediaType") not in INDEX_TYPES and "manifests" not in doc:
                return doc
            wanted = host_platform()
            chosen = None
            children = [c for c in doc.get("manifests") or [] if isinstance(c, dict)]
            self.prefetch(_blob_paths(children))
            for child in children:
                plat = child.get("platform") or {}
                if plat.get("os") == wanted.os and plat.get("architecture") == wanted.architecture:
                    if wanted.variant and plat.get("variant") not in (None, wanted.variant):
                        continue
                    chosen = child
                    break
            if chosen is None:
                return None
            desc = chosen
        return None


def _blob_paths(descriptors: list[dict[str, Any]]) -> list[str]:
    """The blobs that valid descriptors point to (the others are refused when they are used)."""
    digests = [d.get("digest") for d in descriptors]
    return [f"blobs/sha256/{hex_of(d)}" for d in digests if isinstance(d, str) and is_digest(d)]


def _names(annotations: dict[str, str]) -> list[str]:
    """Image names from OCI annotations; a bare tag ("latest") names nothing we can use."""
    for key in (NAME_ANNOTATION, REF_NAME_ANNOTATION):
        value = annotations.get(key)
        if not value or ("/" not in value and ":" not in value):
            continue
        try:
            ref = parse(value)
        except InvalidParameter:
            continue
        if ref.digest is None:
            return [ref.with_default_tag().familiar()]
    return []
