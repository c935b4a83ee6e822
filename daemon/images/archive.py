"""Reading `docker save` archives (blocking; use from a worker thread).

Understands the classic layout (manifest.json, <id>.json, <id>/layer.tar), the Docker 25+ layout
(manifest.json pointing into an OCI blobs/sha256/ tree, with index.json and oci-layout beside it), and
plain OCI image layouts that have only index.json.
"""

import json
import posixpath
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from daemon.errors import InvalidParameter
from daemon.images.platforms import host_platform
from daemon.images.reference import parse
from daemon.store.digest import hex_of, is_digest

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
NAME_ANNOTATION = "io.containerd.image.name"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
MAX_JSON = 16 << 20
MAX_LINK_DEPTH = 16


@dataclass
class ArchiveImage:
    config: bytes
    layers: list[str]  # archive member names, bottom layer first
    repo_tags: list[str]


class SaveArchive:
    def __init__(self, path: Path) -> None:
        try:
            self._tf = tarfile.open(path, "r:*")  # noqa: SIM115 -- closed by close()
        except tarfile.ReadError as e:  # its message lists every decompressor tried: too long
            raise InvalidParameter("invalid tar archive: neither a tar file nor a compressed one") from e
        except (tarfile.TarError, EOFError, OSError) as e:
            raise InvalidParameter(f"invalid tar archive: {e}") from e
        try:
            self._members = {self._norm(m.name): m for m in self._tf.getmembers()}
        except (tarfile.TarError, EOFError, OSError) as e:
            self._tf.close()
            raise InvalidParameter(f"invalid tar archive: {e}") from e

    def close(self) -> None:
        self._tf.close()

    def __enter__(self) -> "SaveArchive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _norm(name: str) -> str:
        return posixpath.normpath("/" + name).lstrip("/")

    def _member(self, name: str) -> tarfile.TarInfo:
        """The regular file at `name`, following symlinks and hardlinks inside the archive."""
        path = self._norm(name)
        for _ in range(MAX_LINK_DEPTH):
            m = self._members.get(path)
            if m is None:
                raise InvalidParameter(f"invalid archive: {name} not found")
            if m.isreg():
                return m
            if m.issym():
                path = self._norm(posixpath.join(posixpath.dirname(path), m.linkname))
            elif m.islnk():
                path = self._norm(m.linkname)
            else:
                raise InvalidParameter(f"invalid archive: {name} is not a file")
        raise InvalidParameter(f"invalid archive: too many links at {name}")

    def open(self, name: str) -> IO[bytes]:
        f = self._tf.extractfile(self._member(name))
        if f is None:
            raise InvalidParameter(f"invalid archive: cannot read {name}")
        return f

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        m = self._member(name)
        if m.size > limit:
            raise InvalidParameter(f"invalid archive: {name} is too large")
        with self.open(name) as f:
            return f.read()

    def _json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InvalidParameter(f"invalid archive: {name}: {e}") from e

    def has(self, name: str) -> bool:
        return self._norm(name) in self._members

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
        out = []
        for entry in manifest:
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
                raise InvalidParameter("invalid archive: manifest.json entry without Config")
            layers = entry.get("Layers") or []
            tags = entry.get("RepoTags") or []
            if not all(isinstance(x, str) for x in [*layers, *tags]):
                raise InvalidParameter("invalid archive: bad manifest.json entry")
            out.append(ArchiveImage(self.read(entry["Config"]), list(layers), list(tags)))
        return out

    # ---- plain OCI layout -----------------------------------------------------------------------

    def _blob_path(self, descriptor: Any) -> str:
        digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
        if not isinstance(digest, str) or not is_digest(digest):
            raise InvalidParameter(f"invalid archive: unsupported descriptor {descriptor!r}")
        return f"blobs/sha256/{hex_of(digest)}"

    def _from_oci_index(self) -> list[ArchiveImage]:
        index = self._json("index.json")
        out = []
        for desc in index.get("manifests") or []:
            annotations = desc.get("annotations") or {}
            manifest = self._pick_manifest(desc)
            if manifest is None:
                continue
            config = self.read(self._blob_path(manifest.get("config")))
            layers = [self._blob_path(layer) for layer in manifest.get("layers") or []]
            out.append(ArchiveImage(config, layers, _names(annotations)))
        if not out:
            raise InvalidParameter("invalid archive: no image for this platform in index.json")
        return out

    def _pick_manifest(self, desc: dict[str, Any]) -> dict[str, Any] | None:
        """Follows nested indexes down to the manifest for this machine's platform."""
        for _ in range(MAX_LINK_DEPTH):
            doc = self._json(self._blob_path(desc))
            if desc.get("mediaType") not in INDEX_TYPES and "manifests" not in doc:
                return doc if isinstance(doc, dict) else None
            wanted = host_platform()
            chosen = None
            for child in doc.get("manifests") or []:
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
