"""ImageService: the daemon's images -- lookup, import, load, tag, delete, list, inspect.

Lookups are served from memory (the store reads the disk once at start), because every container
create resolves an image. Unpacking and other slow disk work runs in worker threads.
"""

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.errors import InvalidParameter, NotFound, no_such_image
from daemon.events.bus import EventBus
from daemon.files.digest import chain_ids, is_digest
from daemon.images import filters as image_filters
from daemon.images import views
from daemon.images.archive import ArchiveImage, SaveArchive
from daemon.images.changes import apply_changes, empty_container_config
from daemon.images.deletion import ImageDeleter, Records, UsageChecker, is_tag_ref
from daemon.images.layers import DEFAULT_MAX_LAYER_BYTES
from daemon.images.platforms import parse_platform
from daemon.images.reference import Reference, familiar_with_tag, parse, parse_repo_tag
from daemon.images.store import ImageStore, Layer, StoredImage, diff_ids_of, ref_repo, validate_config
from daemon.images.uploads import AsyncReadable, BlockingReader, remove_stale_spools, spool, upload_pool
from daemon.labels import labels_match
from daemon.timefmt import rfc3339_nano

log = logging.getLogger(__name__)

DOCKER_VERSION = "pydockerd"
_HEX_PREFIX = re.compile(r"^[a-f0-9]{1,64}$")

# `list` is also a method name below, so annotations after it use this alias (and deletion.Records)
References = list[Reference]


@dataclass
class ImageRecord:
    id: str  # "sha256:<64 hex>"
    config: dict[str, Any]  # the whole image config JSON (a copy: change it freely)
    repo_tags: list[str]


def _no_such_image(ref: str) -> NotFound:
    if re.fullmatch(r"[a-f0-9]{64}", ref):
        return no_such_image("sha256:" + ref)
    return no_such_image(familiar_with_tag(ref))


def _config_bytes(config: dict[str, Any]) -> bytes:
    return json.dumps(config, separators=(",", ":"), ensure_ascii=False).encode()


class ImageService:
    def __init__(
        self, data_root: Path, events: EventBus, max_layer_size: int = DEFAULT_MAX_LAYER_BYTES
    ) -> None:
        self._tmp = data_root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        remove_stale_spools(self._tmp)
        self._uploads = upload_pool()
        self._store = ImageStore(data_root / "image", max_layer_size)
        self._events = events
        self._usage: UsageChecker = lambda _image_id: []
        self._deleter = ImageDeleter(self._store, lambda image_id: self._usage(image_id), self._publish)

    def set_usage_checker(self, fn: UsageChecker) -> None:
        """How the container service tells which containers use an image (and whether they run)."""
        self._usage = fn

    # ---- lookups --------------------------------------------------------------------------------

    def _find(self, ref: str) -> StoredImage | None:
        """Docker's GetImage order: full ID, then name[:tag] / name@digest, then a unique ID prefix."""
        if is_digest(ref):
            image = self._store.get(ref)
            return image if image is not None and not image.retained else None
        hex_part = ref.removeprefix("sha256:")
        is_hex = bool(_HEX_PREFIX.match(hex_part))
        try:
            named: Reference | None = parse(ref)
        except InvalidParameter:
            if not is_hex:  # "0123...ef" (64 hex) is not a valid name, but may be an ID
                raise
            named = None
        if named is not None:
            image_id = self._store.lookup_ref(named.with_default_tag().store_key())
            if image_id is not None:
                return self._store.get(image_id)
        return self._store.search(hex_part) if is_hex else None

    def _get(self, ref: str) -> StoredImage:
        image = self._find(ref.strip()) if ref.strip() else None
        if image is None:
            raise _no_such_image(ref)
        return image

    def _tags_and_digests(self, image_id: str) -> tuple[list[str], list[str]]:
        refs = self._store.refs_of(image_id)
        return [r for r in refs if is_tag_ref(r)], [r for r in refs if not is_tag_ref(r)]

    def _record(self, image: StoredImage) -> ImageRecord:
        tags, _ = self._tags_and_digests(image.id)
        return ImageRecord(image.id, deepcopy(image.config), tags)

    async def resolve(self, ref: str) -> ImageRecord:
        """The image `ref` names: name[:tag], name@digest, a full ID or a unique ID prefix."""
        return self._record(self._get(ref))

    def layer_dirs(self, image_id: str) -> list[str]:
        """The image's layer directories for overlayfs lowerdir=, top-most first.

        Also works for images deleted (forcibly) while stopped containers still use them.
        """
        image = self._store.get(image_id)
        if image is None:
            raise _no_such_image(image_id)
        layers = self._layers(image)
        if not layers:
            return [str(self._store.empty_dir)]
        return [str(layer.diff_path) for layer in reversed(layers)]

    def size(self, image_id: str) -> int:
        """The bytes of all the image's layers; also for an image deleted (forcibly) while stopped
        containers still use it."""
        image = self._store.get(image_id)
        if image is None:
            raise _no_such_image(image_id)
        return image.size

    def _layers(self, image: StoredImage) -> list[Layer]:
        out = []
        for chain in image.chain:
            layer = self._store.layer(chain)
            if layer is None:
                raise NotFound(f"layer {chain} of image {image.id} does not exist")
            out.append(layer)
        return out

    def count(self) -> int:
        return len(self._store.images())

    # ---- list / inspect -------------------------------------------------------------------------

    def list(self, all_: bool, filters: dict[str, list[str]], digests: bool = False) -> list[dict[str, Any]]:
        """GET /images/json. Untagged images have empty RepoTags (the API layer adds "<none>" for
        clients older than 1.43). `digests` is accepted for compatibility: RepoDigests are always set."""
        image_filters.validate(filters)
        dangling = image_filters.dangling(filters)
        before = min((self._get(v).created_ns for v in filters.get("before", [])), default=None)
        since = max((self._get(v).created_ns for v in filters.get("since", [])), default=None)
        until = min((image_filters.timestamp_ns(v) for v in filters.get("until", [])), default=None)
        patterns = [image_filters.glob_matcher(p) for p in filters.get("reference", [])]
        labels = filters.get("label", [])
        out = []
        for image in self._store.images():
            if before is not None and image.created_ns >= before:
                continue
            if since is not None and image.created_ns <= since:
                continue
            if until is not None and image.created_ns >= until:
                continue
            config_labels = (image.config.get("config") or {}).get("Labels") or {}
            if labels and not labels_match(config_labels, labels):
                continue
            refs = self._store.refs_of(image.id)
            if dangling is True and any(is_tag_ref(r) for r in refs):
                continue
            if patterns:
                refs = [r for r in refs if any(m(r) or m(ref_repo(r)) for m in patterns)]
            tags = [r for r in refs if is_tag_ref(r)]
            repo_digests = [r for r in refs if not is_tag_ref(r)]
            if not refs:
                # untagged: a dangling image, or an intermediate one (with children) shown only by all
                if dangling is False or patterns:
                    continue
                if self._store.children(image.id) and (not all_ or dangling is True):
                    continue
            out.append(views.summary(image, tags, repo_digests))
        out.sort(key=lambda s: (s["Created"], s["Id"]), reverse=True)
        return out

    def inspect(self, ref: str) -> dict[str, Any]:
        image = self._get(ref)
        tags, repo_digests = self._tags_and_digests(image.id)
        return views.inspect(image, tags, repo_digests, self._layers(image))

    # ---- tag / delete ---------------------------------------------------------------------------

    def _publish(self, action: str, image_id: str, name: str) -> None:
        image = self._store.get(image_id)
        attrs: dict[str, str] = {}
        if image is not None:
            attrs.update(((image.config.get("config") or {}).get("Labels")) or {})
        attrs["name"] = name
        self._events.publish("image", action, image_id, attrs)

    def _add_tag(self, image: StoredImage, ref: Reference) -> str | None:
        """Points a reference at the image; returns the image it pointed at before, if another."""
        if ref.familiar_name == "sha256":
            raise InvalidParameter("refusing to create an ambiguous tag using digest algorithm as name")
        old = self._store.set_ref(ref.store_key(), image.id)
        self._store.set_last_tag_time(image.id, rfc3339_nano(time.time_ns()))
        return old

    def delete(self, ref: str, force: bool, noprune: bool) -> Records:
        """DELETE /images/{name}, with moby's rules for tags, conflicts and forcing."""
        return self._deleter.delete(self._get(ref), ref, force, noprune)

    def collect_garbage(self) -> None:
        """Forgets images deleted while containers used them, once none does (and their layers).

        The container service calls this after removing a container."""
        self._deleter.collect_garbage()

    def tag(self, ref: str, repo: str, tag: str | None) -> None:
        image = self._get(ref)
        new = parse_repo_tag(repo, tag)
        self._add_tag(image, new)
        self._publish("tag", image.id, new.familiar())

    # ---- import / load / create -----------------------------------------------------------------

    async def import_image(
        self,
        stream: AsyncReadable,
        repo: str | None,
        tag: str | None,
        changes: Sequence[str],
        message: str | None,
        platform: str | None,
    ) -> str:
        """`docker import`: a root filesystem tarball (maybe compressed) becomes a one-layer image."""
        ref = parse_repo_tag(repo, tag) if repo else None
        container_config = apply_changes(empty_container_config(), changes)
        plat = parse_platform(platform)
        comment = message or "Imported from -"
        loop = asyncio.get_running_loop()
        reader = BlockingReader(stream, loop)
        layer = await loop.run_in_executor(self._uploads, self._store.unpack_layer, reader, None)
        try:
            created = rfc3339_nano(time.time_ns())
            config: dict[str, Any] = {"comment": comment, "created": created}
            config.update(docker_version=DOCKER_VERSION, config=container_config)
            config["architecture"] = plat.architecture
            if plat.variant:
                config["variant"] = plat.variant
            config["os"] = plat.os
            config["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id]}
            config["history"] = [{"created": created, "comment": comment}]
            image = await asyncio.to_thread(self._store.put_image, _config_bytes(config))
        except BaseException:
            self._release([layer.chain_id], failed=True)
            raise
        self._release([layer.chain_id], failed=False)
        if ref is not None:
            self._add_tag(image, ref)
            self._publish("tag", image.id, ref.familiar())
        self._publish("import", image.id, image.id)
        return image.id

    async def create_image(
        self, config: dict[str, Any], base_id: str | None = None, layer_tar: Path | None = None
    ) -> str:
        """For commit and build: `config` on top of image `base_id`, plus one layer from a tar file.

        rootfs is filled in here (the base's diff IDs, then the new layer's); the image records
        `base_id` as its parent. Tag it with tag() afterwards."""
        base = self._store.get(base_id) if base_id else None
        if base_id and base is None:
            raise _no_such_image(base_id)
        diff_ids = diff_ids_of(base.config) if base is not None else []
        pinned = list(base.chain) if base is not None else []
        self._store.pin(pinned)
        try:
            if layer_tar is not None:
                parent_chain = pinned[-1] if pinned else None
                layer = await asyncio.to_thread(self._unpack_file, layer_tar, parent_chain)
                pinned.append(layer.chain_id)
                diff_ids.append(layer.diff_id)
            config = dict(config)
            config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
            image = await asyncio.to_thread(
                self._store.put_image, _config_bytes(config), base.id if base is not None else ""
            )
        except BaseException:
            self._release(pinned, failed=True)
            raise
        self._release(pinned, failed=False)
        return image.id

    def _release(self, pinned: Sequence[str], failed: bool) -> None:
        """Unpins layers; after a failure, removes those that no image uses (just unpacked ones)."""
        self._store.unpin(pinned)
        if failed:
            self._store.gc_layers()

    def _unpack_file(self, path: Path, parent: str | None) -> Layer:
        with open(path, "rb") as f:
            return self._store.unpack_layer(f, parent)

    async def load(self, stream: AsyncReadable) -> AsyncIterator[dict[str, Any]]:
        """`docker load`: yields Docker's messages ({"stream": "Loaded image: busybox:latest\\n"})."""
        path = await spool(stream, self._tmp)
        try:
            archive = await asyncio.to_thread(SaveArchive, path)
            try:
                entries = await asyncio.to_thread(archive.images)
                for entry in entries:
                    refs = [self._loaded_ref(t) for t in entry.repo_tags]
                    image = await asyncio.to_thread(self._load_one, archive, entry)
                    messages = self._tag_loaded(image, refs)
                    self._publish("load", image.id, image.id)
                    for msg in messages:
                        yield msg
            finally:
                archive.close()
        finally:
            path.unlink(missing_ok=True)

    @staticmethod
    def _loaded_ref(repo_tag: str) -> Reference:
        ref = parse(repo_tag)
        if ref.digest is not None or ref.tag is None:
            raise InvalidParameter(f"invalid tag {repo_tag!r}")
        return ref

    def _load_one(self, archive: SaveArchive, entry: ArchiveImage) -> StoredImage:
        """Blocking: unpacks the layers not present yet, checks their diff IDs, stores the config."""
        config = validate_config(entry.config)
        diff_ids = diff_ids_of(config)
        if len(diff_ids) != len(entry.layers):
            raise InvalidParameter(
                f"invalid manifest, layers length mismatch: expected {len(diff_ids)}, got {len(entry.layers)}"
            )
        pinned: list[str] = []
        try:
            parent: str | None = None
            for member, chain, diff_id in zip(entry.layers, chain_ids(diff_ids), diff_ids, strict=True):
                layer = self._store.acquire_layer(chain)
                if layer is None:
                    with archive.open(member) as f:
                        layer = self._store.unpack_layer(f, parent, expected_diff_id=diff_id)
                pinned.append(layer.chain_id)
                parent = chain
            image = self._store.put_image(entry.config)
        except BaseException:
            self._release(pinned, failed=True)
            raise
        self._release(pinned, failed=False)
        return image

    def _tag_loaded(self, image: StoredImage, refs: References) -> Records:
        if not refs:
            return [{"stream": f"Loaded image ID: {image.id}\n"}]
        out = []
        for ref in refs:
            name = ref.familiar()
            old = self._store.set_ref(ref.store_key(), image.id)
            if old is not None:
                out.append(
                    {
                        "stream": f"The image {name} already exists, renaming the old one with ID {old} "
                        "to empty string\n"
                    }
                )
            out.append({"stream": f"Loaded image: {name}\n"})
        return out
