"""The content-addressed image store on disk, mirrored in memory.

Layout under <data_root>/image/:
  imagedb/sha256/<hex>            image config, exactly the bytes whose sha256 is the image ID
  imagedb/metadata/<hex>.json     {"parent": ..., "lastTagTime": ..., "retained": bool}
  layers/sha256/<chainhex>/       diff/ (the unpacked layer), diff_id, parent, size
  layers/empty/                   the lower dir of images without layers
  repositories.json               {"Repositories": {"busybox": {"busybox:latest": "sha256:..."}}}
  staging/, trash/                layers being unpacked / being removed (never visible as layers)

A layer directory appears by one rename, so a crash never leaves half a layer behind. Everything is read
once at start; afterwards lookups are served from memory. A lock makes the store safe to use from the
event loop and from worker threads (which unpack layers) at the same time.
"""

import json
import logging
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.errors import InvalidParameter
from daemon.files.atomic import read_json, write_bytes_atomic, write_json_atomic
from daemon.files.digest import SHA256_HEX, chain_ids, hex_of, is_digest, sha256_digest
from daemon.files.trash import Trash
from daemon.images.layers import DEFAULT_MAX_LAYER_BYTES, LayerResult, Readable, extract_layer
from daemon.timefmt import parse_rfc3339

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layer:
    chain_id: str
    diff_id: str
    parent: str | None  # chain ID of the layer below
    size: int
    path: Path  # the layer directory; the files are in path / "diff"

    @property
    def diff_path(self) -> Path:
        return self.path / "diff"


@dataclass
class StoredImage:
    id: str
    config: dict[str, Any]
    chain: list[str]  # chain IDs, bottom layer first
    parent: str = ""  # the image this one was built from, when known (commit, build)
    last_tag_time: str | None = None
    # deleted by the user while stopped containers still used it: invisible, layers kept for them
    retained: bool = False
    created_ns: int = 0
    size: int = 0

    def metadata(self) -> dict[str, Any]:
        return {"parent": self.parent, "lastTagTime": self.last_tag_time, "retained": self.retained}


@dataclass
class _State:
    images: dict[str, StoredImage] = field(default_factory=dict)
    layers: dict[str, Layer] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # familiar ref ("busybox:latest") -> image ID
    by_image: dict[str, set[str]] = field(default_factory=dict)  # image ID -> its refs
    pins: Counter[str] = field(default_factory=Counter)  # layers in use by unfinished imports/loads


def validate_config(raw: bytes) -> dict[str, Any]:
    """An image config must be a JSON object with rootfs.diff_ids of sha256 digests."""
    try:
        config = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidParameter(f"invalid image config: {e}") from e
    if not isinstance(config, dict):
        raise InvalidParameter("invalid image config: not a JSON object")
    rootfs = config.get("rootfs") or {"type": "layers", "diff_ids": []}
    diff_ids = rootfs.get("diff_ids") or []
    if rootfs.get("type") != "layers" or not isinstance(diff_ids, list):
        raise InvalidParameter("invalid image config: rootfs must be of type layers")
    for d in diff_ids:
        if not isinstance(d, str) or not is_digest(d):
            raise InvalidParameter(f"invalid image config: bad diff ID {d!r}")
    return config


def diff_ids_of(config: dict[str, Any]) -> list[str]:
    return list((config.get("rootfs") or {}).get("diff_ids") or [])


def _created_ns(config: dict[str, Any]) -> int:
    """An image config's `created` in Unix nanoseconds; 0 when it is missing or not a time."""
    created = config.get("created")
    try:
        return parse_rfc3339(created) if isinstance(created, str) else 0
    except ValueError:
        return 0


class ImageStore:
    def __init__(self, root: Path, max_layer_size: int = DEFAULT_MAX_LAYER_BYTES) -> None:
        self.root = root
        self.max_layer_size = max_layer_size
        self.imagedb = root / "imagedb" / "sha256"
        self.metadata_dir = root / "imagedb" / "metadata"
        self.layers_dir = root / "layers" / "sha256"
        self.empty_dir = root / "layers" / "empty"
        self.staging = root / "staging"
        self.trash = Trash(root / "trash")
        self.repositories_file = root / "repositories.json"
        self._lock = threading.RLock()
        self._state = _State()
        for d in (self.imagedb, self.metadata_dir, self.layers_dir, self.empty_dir, self.staging):
            d.mkdir(parents=True, exist_ok=True)
        self.empty_dir.chmod(0o755)
        self._load()

    # ---- start-up -------------------------------------------------------------------------------

    def _load(self) -> None:
        for leftover in self.staging.iterdir():  # unpacks interrupted by a crash
            self._discard(leftover)
        self._load_layers()
        all_loaded = self._load_images()
        self._load_refs()
        if all_loaded:  # else an unreadable image would take its layers (and its containers' roots) along
            self.gc_layers()  # layers of imports that crashed before their image was written
        else:
            log.warning("not collecting unused layers: some images could not be read")
        self.trash.purge_soon()

    def _load_layers(self) -> None:
        st = self._state
        for d in self.layers_dir.iterdir():
            if not SHA256_HEX.match(d.name):
                self._discard(d)
                continue
            try:
                diff_id = (d / "diff_id").read_text().strip()
                parent_file = d / "parent"
                parent = parent_file.read_text().strip() if parent_file.exists() else None
                size = int((d / "size").read_text().strip() or 0)
            except (OSError, ValueError) as e:
                log.warning("dropping broken layer %s: %s", d.name, e)
                self._discard(d)
                continue
            chain = "sha256:" + d.name
            st.layers[chain] = Layer(chain, diff_id, parent or None, size, d)

    def _load_images(self) -> bool:
        """Load every image config; False when any could not be read."""
        all_loaded = True
        for f in self.imagedb.iterdir():
            if not SHA256_HEX.match(f.name):
                continue
            image_id = "sha256:" + f.name
            try:
                raw = f.read_bytes()
                if sha256_digest(raw) != image_id:
                    raise InvalidParameter("content does not match its digest")
                config = validate_config(raw)
                meta_file = self.metadata_dir / f"{f.name}.json"
                meta = read_json(meta_file) if meta_file.exists() else {}
                if not isinstance(meta, dict):
                    raise ValueError("metadata is not an object")
            except (OSError, InvalidParameter, ValueError) as e:
                log.warning("ignoring image %s: %s", image_id, e)
                all_loaded = False
                continue
            chain = chain_ids(diff_ids_of(config))
            missing = [c for c in chain if c not in self._state.layers]
            if missing:
                log.warning("ignoring image %s: layer %s is missing", image_id, missing[0])
                continue  # its layers are known: collecting the others takes nothing of it
            self._add_image(
                StoredImage(
                    image_id,
                    config,
                    chain,
                    parent=meta.get("parent") or "",
                    last_tag_time=meta.get("lastTagTime"),
                    retained=bool(meta.get("retained")),
                )
            )
        return all_loaded

    def _load_refs(self) -> None:
        if not self.repositories_file.exists():
            return
        try:
            repos = read_json(self.repositories_file).get("Repositories") or {}
        except (OSError, ValueError, AttributeError) as e:
            log.warning("ignoring unreadable %s: %s", self.repositories_file, e)
            return
        for refs in repos.values():
            for key, image_id in refs.items():
                image = self._state.images.get(image_id)
                if image is not None and not image.retained:
                    self._state.refs[key] = image_id
                    self._state.by_image.setdefault(image_id, set()).add(key)

    # ---- layers ---------------------------------------------------------------------------------

    def layer(self, chain_id: str) -> Layer | None:
        with self._lock:
            return self._state.layers.get(chain_id)

    def acquire_layer(self, chain_id: str) -> Layer | None:
        """The layer, pinned (kept from garbage collection until unpin), or None if absent."""
        with self._lock:
            layer = self._state.layers.get(chain_id)
            if layer is not None:
                self._state.pins[chain_id] += 1
            return layer

    def pin(self, chain_ids: Iterable[str]) -> None:
        """Keeps existing layers from garbage collection until unpin."""
        with self._lock:
            self._state.pins.update(chain_ids)

    def unpin(self, chain_ids: Iterable[str]) -> None:
        with self._lock:
            self._state.pins.subtract(chain_ids)
            self._state.pins += Counter()  # drops the zero counts

    def unpack_layer(self, src: Readable, parent: str | None, expected_diff_id: str | None = None) -> Layer:
        """Blocking: unpacks a layer tar on top of chain `parent` and registers it, pinned.

        When an identical layer already exists, the fresh copy is thrown away and the existing one is
        returned (pinned as well). The caller unpins once an image references the layer.
        """
        work = self.staging / uuid.uuid4().hex
        try:
            work.mkdir(mode=0o700)
            result: LayerResult = extract_layer(src, work / "diff", self.max_layer_size)
            if expected_diff_id is not None and result.diff_id != expected_diff_id:
                raise InvalidParameter(
                    f"invalid diffID for layer: expected {expected_diff_id!r}, got {result.diff_id!r}"
                )
            chain = chain_ids([parent, result.diff_id])[1] if parent else result.diff_id
            write_bytes_atomic(work / "diff_id", result.diff_id.encode(), 0o644)
            if parent:
                write_bytes_atomic(work / "parent", parent.encode(), 0o644)
            write_bytes_atomic(work / "size", str(result.size).encode(), 0o644)
            work.chmod(0o711)
            with self._lock:
                existing = self._state.layers.get(chain)
                if existing is None:
                    target = self.layers_dir / hex_of(chain)
                    os.rename(work, target)
                    existing = Layer(chain, result.diff_id, parent, result.size, target)
                    self._state.layers[chain] = existing
                self._state.pins[chain] += 1
            return existing
        finally:
            if work.exists():  # failed, or a duplicate of an existing layer
                self._discard(work)
                self.trash.purge_soon()

    def gc_layers(self) -> list[str]:
        """Removes the layers no image (visible or retained) and no pin refers to; top-most first."""
        with self._lock:
            st = self._state
            used: set[str] = set(st.pins)
            for image in st.images.values():
                used.update(image.chain)
            unused = [c for c in st.layers if c not in used]
            # a layer's parent is always used when the layer is, so children come before parents here
            depth = {c: self._depth(c) for c in unused}
            unused.sort(key=lambda c: -depth[c])
            for chain in unused:
                layer = st.layers.pop(chain)
                self._discard(layer.path)
        if unused:
            self.trash.purge_soon()
        return unused

    def _depth(self, chain: str) -> int:
        n = 0
        layer = self._state.layers.get(chain)
        while layer is not None and layer.parent:
            n += 1
            layer = self._state.layers.get(layer.parent)
        return n

    # ---- images ---------------------------------------------------------------------------------

    def get(self, image_id: str) -> StoredImage | None:
        with self._lock:
            return self._state.images.get(image_id)

    def images(self, include_retained: bool = False) -> list[StoredImage]:
        with self._lock:
            return [i for i in self._state.images.values() if include_retained or not i.retained]

    def search(self, prefix: str) -> StoredImage | None:
        """A visible image whose hex ID starts with `prefix` -- when exactly one does."""
        with self._lock:
            found = [
                i for i in self._state.images.values() if not i.retained and hex_of(i.id).startswith(prefix)
            ]
        return found[0] if len(found) == 1 else None

    def children(self, image_id: str) -> list[str]:
        with self._lock:
            return [i.id for i in self._state.images.values() if i.parent == image_id and not i.retained]

    def put_image(self, config_bytes: bytes, parent: str = "") -> StoredImage:
        """Blocking: stores a config whose layers are all present; returns the (new or existing) image."""
        config = validate_config(config_bytes)
        image_id = sha256_digest(config_bytes)
        chain = chain_ids(diff_ids_of(config))
        with self._lock:
            missing = [c for c in chain if c not in self._state.layers]
            if missing:
                raise InvalidParameter(f"layer {missing[0]} of image {image_id} is missing")
            existing = self._state.images.get(image_id)
            if existing is not None and not existing.retained:
                return existing
        path = self.imagedb / hex_of(image_id)
        with self._lock:
            # written under the lock, always: a remove_image racing with us must not unlink it after
            # we saw it on disk (the write is idempotent, the content is addressed by its digest)
            write_bytes_atomic(path, config_bytes, 0o600)
            image = self._state.images.get(image_id)
            if image is None:
                image = StoredImage(image_id, config, chain, parent=parent)
                self._add_image(image)
            image.retained = False
            if parent and not image.parent:
                image.parent = parent
            self._write_metadata(image)
            return image

    def _add_image(self, image: StoredImage) -> None:
        image.created_ns = _created_ns(image.config)
        image.size = sum(self._state.layers[c].size for c in image.chain)
        self._state.images[image.id] = image

    def _write_metadata(self, image: StoredImage) -> None:
        write_json_atomic(self.metadata_dir / f"{hex_of(image.id)}.json", image.metadata())

    def set_last_tag_time(self, image_id: str, when: str) -> None:
        with self._lock:
            image = self._state.images[image_id]
            image.last_tag_time = when
            self._write_metadata(image)

    def remove_image(self, image_id: str, retain: bool) -> list[str]:
        """Drops an image (its references must be gone). With `retain`, it stays on disk, invisible,
        for the containers that still use it. Returns the chain IDs of the layers removed."""
        with self._lock:
            image = self._state.images.get(image_id)
            if image is None:
                return []
            if retain:
                image.retained = True
                self._write_metadata(image)
                return []
            del self._state.images[image_id]
            # the config first: a crash between the two must not leave it without its "retained" mark
            for path in (self.imagedb / hex_of(image_id), self.metadata_dir / f"{hex_of(image_id)}.json"):
                path.unlink(missing_ok=True)
            return self.gc_layers()

    # ---- references -----------------------------------------------------------------------------

    def lookup_ref(self, key: str) -> str | None:
        with self._lock:
            return self._state.refs.get(key)

    def refs_of(self, image_id: str) -> list[str]:
        with self._lock:
            return sorted(self._state.by_image.get(image_id, ()))

    def set_ref(self, key: str, image_id: str) -> str | None:
        """Points `key` at `image_id`; returns the image it pointed at before, if another one."""
        with self._lock:
            old = self._state.refs.get(key)
            if old == image_id:
                return None
            if old is not None:
                self._state.by_image[old].discard(key)
            self._state.refs[key] = image_id
            self._state.by_image.setdefault(image_id, set()).add(key)
            self._write_refs()
            return old

    def remove_ref(self, key: str) -> str | None:
        with self._lock:
            old = self._state.refs.pop(key, None)
            if old is not None:
                self._state.by_image[old].discard(key)
                self._write_refs()
            return old

    def _write_refs(self) -> None:
        repos: dict[str, dict[str, str]] = {}
        for key, image_id in sorted(self._state.refs.items()):
            repos.setdefault(ref_repo(key), {})[key] = image_id
        write_json_atomic(self.repositories_file, {"Repositories": repos}, 0o600)

    # ---- removal --------------------------------------------------------------------------------

    def _discard(self, path: Path) -> None:
        """Moves a directory out of sight at once; the slow removal happens in the background."""
        try:
            self.trash.discard(path)
        except OSError as e:  # neither moved nor removed: it stays, out of the store's records
            log.warning("cannot remove %s: %s", path, e)


def ref_repo(key: str) -> str:
    """The repository part of a stored reference: "busybox:latest" -> "busybox"."""
    if "@" in key:
        return key.split("@", 1)[0]
    return key.rsplit(":", 1)[0]
