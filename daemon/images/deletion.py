"""`docker rmi`: which references go, which conflicts stop it (hard, or until forced), and the parents
pruned after it, following moby's rules (daemon/images/image_delete.go)."""

from collections.abc import Callable
from dataclasses import dataclass

from daemon.errors import Conflict
from daemon.files.digest import hex_of, short_id
from daemon.images.reference import parse
from daemon.images.store import ImageStore, StoredImage, ref_repo

Records = list[dict[str, str]]  # [{"Untagged": ref} | {"Deleted": id}], in Docker's order
UsageChecker = Callable[[str], list[tuple[str, bool]]]  # image ID -> [(container ID, running)]
Publisher = Callable[[str, str, str], None]  # (action, image ID, name) -> an image event


@dataclass
class DeleteConflict:
    hard: bool
    used: bool  # by a container
    message: str


def is_tag_ref(key: str) -> bool:
    return "@" not in key


def is_single_reference(refs: list[str]) -> bool:
    """At most one tag, and every digest reference in that tag's repository (moby's rule)."""
    if len(refs) <= 1:
        return len(refs) == 1
    single: str | None = None
    digest_repos: set[str] = set()
    for key in refs:
        if not is_tag_ref(key):
            digest_repos.add(ref_repo(key))
        elif single is None:
            single = key
        else:
            return False
    single = single or refs[0]
    return len(digest_repos) == 1 and ref_repo(single) in digest_repos


def is_id_prefix(image_id: str, ref: str) -> bool:
    return image_id.startswith(ref) or hex_of(image_id).startswith(ref)


class ImageDeleter:
    def __init__(self, store: ImageStore, usage: UsageChecker, publish: Publisher) -> None:
        self._store = store
        self._usage = usage
        self._publish = publish

    def _untag(self, image_id: str, key: str, records: Records) -> None:
        self._store.remove_ref(key)
        records.append({"Untagged": key})
        self._publish("untag", image_id, image_id)

    def delete(self, image: StoredImage, ref: str, force: bool, noprune: bool) -> Records:
        """Delete what `ref` (which names `image`) asks for; Docker's records of what went."""
        image_id = image.id
        records: Records = []
        refs = self._store.refs_of(image_id)
        quiet = False
        if not is_id_prefix(image_id, ref):
            if not force and is_single_reference(refs):
                users = self._usage(image_id)
                if users:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{ref}" (must force) - container '
                        f"{short_id(users[0][0])} is using its referenced image {short_id(image_id)}"
                    )
            named = parse(ref).with_default_tag()
            self._untag(image_id, named.store_key(), records)
            refs = self._store.refs_of(image_id)
            if named.digest is None and not any(
                is_tag_ref(r) and ref_repo(r) == named.familiar_name for r in refs
            ):
                # the repository's last tag is gone: its digest references go too
                for key in refs:
                    if not is_tag_ref(key) and ref_repo(key) == named.familiar_name:
                        self._untag(image_id, key, records)
                refs = self._store.refs_of(image_id)
            if refs:
                return records
            quiet = True
        elif is_single_reference(refs):
            conflict = self._conflict(image_id, check_stopped=not force, check_refs=False)
            if conflict is not None:
                raise self._conflict_error(image_id, conflict)
            for key in refs:
                self._untag(image_id, key, records)
        self._delete_image(image_id, records, force, prune=not noprune, quiet=quiet)
        self.collect_garbage()
        return records

    def _conflict(self, image_id: str, check_stopped: bool, check_refs: bool) -> DeleteConflict | None:
        if self._store.children(image_id):
            return DeleteConflict(True, False, "image has dependent child images")
        users = self._usage(image_id)
        running = [cid for cid, is_running in users if is_running]
        if running:
            return DeleteConflict(
                True, True, f"image is being used by running container {short_id(running[0])}"
            )
        if check_refs and self._store.refs_of(image_id):
            return DeleteConflict(False, False, "image is referenced in multiple repositories")
        stopped = [cid for cid, is_running in users if not is_running]
        if check_stopped and stopped:
            return DeleteConflict(
                False, True, f"image is being used by stopped container {short_id(stopped[0])}"
            )
        return None

    @staticmethod
    def _conflict_error(image_id: str, c: DeleteConflict) -> Conflict:
        how = "cannot be forced" if c.hard else "must be forced"
        return Conflict(f"conflict: unable to delete {short_id(image_id)} ({how}) - {c.message}")

    def _delete_image(self, image_id: str, records: Records, force: bool, prune: bool, quiet: bool) -> None:
        conflict = self._conflict(image_id, check_stopped=not force, check_refs=not force)
        if conflict is not None:
            dangling = not self._store.refs_of(image_id) and not self._store.children(image_id)
            if quiet and (not dangling or conflict.used):
                return
            raise self._conflict_error(image_id, conflict)
        image = self._store.get(image_id)
        parent = image.parent if image is not None else ""
        for key in self._store.refs_of(image_id):
            self._untag(image_id, key, records)
        self._publish("delete", image_id, image_id)
        # containers (stopped: running ones were a conflict) keep the layers until they are gone
        retain = bool(self._usage(image_id))
        removed_layers = self._store.remove_image(image_id, retain=retain)
        records.append({"Deleted": image_id})
        records.extend({"Deleted": chain} for chain in reversed(removed_layers))
        if prune and parent:
            parent_image = self._store.get(parent)
            if parent_image is not None and not parent_image.retained:
                self._delete_image(parent, records, force=False, prune=True, quiet=True)

    def collect_garbage(self) -> None:
        """Forgets images deleted while containers used them, once none does (and their layers)."""
        for image in self._store.images(include_retained=True):
            if image.retained and not self._usage(image.id):
                self._store.remove_image(image.id, retain=False)
