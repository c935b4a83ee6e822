"""`docker create`: a create body checked and turned into a new container's record and directory.

Nothing is written until every check has passed; a failure while writing removes what was written."""

import contextlib
import secrets
from typing import Any, Protocol

from daemon.containers import bind_specs
from daemon.containers.model import parse_create
from daemon.containers.names import random_name, valid_name
from daemon.containers.networking import Networking
from daemon.containers.record import new_record
from daemon.containers.runspec import container_caps, write_hostname
from daemon.containers.security import SeccompPolicy
from daemon.containers.store import Container, ContainerStore
from daemon.containers.validate import check_create
from daemon.errors import Conflict, InvalidParameter
from daemon.files.trees import remove_tree


class ResolvedImage(Protocol):
    id: str
    config: dict[str, Any]


class ImageLookup(Protocol):
    async def resolve(self, ref: str) -> ResolvedImage: ...

    def layer_dirs(self, image_id: str) -> list[str]: ...


def invalid_name(name: str) -> InvalidParameter:
    return InvalidParameter(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")


def name_in_use(name: str, owner: str) -> Conflict:
    return Conflict(
        f'Conflict. The container name "/{name}" is already in use by container "{owner}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )


async def create_container(
    store: ContainerStore,
    images: ImageLookup,
    seccomp: SeccompPolicy,
    networking: Networking,
    ncpu: int,
    name: str | None,
    body: Any,
) -> tuple[Container, list[str]]:
    """The new container (saved, added to the store) and the warnings for the client."""
    req = parse_create(body)
    hc = req.HostConfig_
    hc_raw = (body or {}).get("HostConfig") or {}
    if name:
        if not valid_name(name):
            raise invalid_name(name)
        name = name.lstrip("/")
        owner = store.name_owner(name)
        if owner:
            raise name_in_use(name, owner)
    if not req.Image:
        raise InvalidParameter("config.Image: field is required")  # Docker: "No command specified" later
    warnings = check_create(req, body, ncpu)
    # compiled now: a profile libseccomp refuses is refused here, and the start finds it cached
    await seccomp.filter_for(hc_raw, container_caps(hc_raw))
    image = await images.resolve(req.Image)
    lower = images.layer_dirs(image.id)
    cid = secrets.token_hex(32)
    name = name or random_name(store.names())
    cdir = store.container_dir(cid)
    record = new_record(cid, name, req, image.id, image.config, cdir, lower)
    if not record["Path"]:
        raise InvalidParameter("no command specified")
    # checked against what the client asked for (the record's Hostname is the default one by now)
    record["NetworkSettings"]["Networks"] = networking.container_settings(
        record["HostConfig"], dict(body or {}), (body or {}).get("NetworkingConfig")
    )
    binds = bind_specs.parse_binds(hc.Binds if hc else None)
    record["Mounts"] = [b.inspect() for b in binds]
    c = Container(record, cdir)
    try:
        for sub in ("rw/upper", "rw/work"):
            (cdir / sub).mkdir(parents=True, exist_ok=True)
        write_hostname(c)
        networking.write_etc_files(c)
        store.save(c)  # the record last: a crash before it leaves a dir that load() removes
    except BaseException:
        with contextlib.suppress(OSError):
            remove_tree(cdir)  # nothing but what we wrote just now
        raise
    store.add(c)
    return c, warnings
