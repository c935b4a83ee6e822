"""ImageService on a real store in tmp_path: import, load (both save layouts), tag, delete, list, restart."""

import asyncio
import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.errors import Conflict, InvalidParameter, NotFound
from daemon.events.bus import EventBus
from daemon.files.digest import chain_ids
from daemon.images.service import ImageService
from daemon.timefmt import parse_rfc3339

# ---- builders ------------------------------------------------------------------------------------


def tar_of(
    files: dict[str, bytes | None],
    symlinks: dict[str, str] | None = None,
    hardlinks: dict[str, str] | None = None,
) -> bytes:
    """A tar with regular files (None: a directory), then symlinks and hardlinks, in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
        for name, target in (hardlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.LNKTYPE, target
            tf.addfile(info)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image_config(layers: list[bytes], created: str = "2024-01-01T00:00:00Z", **config: Any) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {"Cmd": ["sh"], **config},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(layer) for layer in layers]},
            "history": [{"created": created, "created_by": "test"}],
        }
    ).encode()


def classic_save(images: list[tuple[bytes, list[bytes], list[str]]], link_duplicates: bool = True) -> bytes:
    """The pre-25 `docker save` layout: <config>.json, <dir>/layer.tar, manifest.json."""
    files: dict[str, bytes | None] = {}
    links: dict[str, str] = {}
    manifest = []
    seen: dict[str, str] = {}
    for n, (config, layers, tags) in enumerate(images):
        files[f"{sha(config)}.json"] = config
        paths = []
        for i, layer in enumerate(layers):
            d = sha(f"{n}-{i}".encode())
            files[f"{d}/"] = None
            files[f"{d}/VERSION"] = b"1.0"
            if link_duplicates and sha(layer) in seen:
                links[f"{d}/layer.tar"] = f"../{seen[sha(layer)]}/layer.tar"
            else:
                files[f"{d}/layer.tar"] = layer
                seen[sha(layer)] = d
            paths.append(f"{d}/layer.tar")
        manifest.append({"Config": f"{sha(config)}.json", "RepoTags": tags or None, "Layers": paths})
    files["manifest.json"] = json.dumps(manifest).encode()
    return tar_of(files, links)


def oci_save(
    images: list[tuple[bytes, list[bytes], list[str]]],
    with_manifest_json: bool = True,
    gzip_layers: bool = False,
) -> bytes:
    """Docker 25+ `docker save` (OCI layout plus manifest.json), or a plain OCI layout without it."""
    files: dict[str, bytes | None] = {"blobs/": None, "blobs/sha256/": None}
    manifest_json = []
    index = []
    for config, layers, tags in images:
        files[f"blobs/sha256/{sha(config)}"] = config
        blobs = [gzip.compress(layer) if gzip_layers else layer for layer in layers]
        for blob in blobs:
            files[f"blobs/sha256/{sha(blob)}"] = blob
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": f"sha256:{sha(config)}",
                },
                "layers": [
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": f"sha256:{sha(b)}"}
                    for b in blobs
                ],
            }
        ).encode()
        files[f"blobs/sha256/{sha(manifest)}"] = manifest
        desc = {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": f"sha256:{sha(manifest)}",
        }
        if not with_manifest_json:  # put it behind an index, as multi-platform exporters do
            nested = json.dumps(
                {
                    "schemaVersion": 2,
                    "manifests": [
                        {**desc, "platform": {"os": "linux", "architecture": "amd64"}},
                        {**desc, "platform": {"os": "linux", "architecture": "s390x"}},
                    ],
                }
            ).encode()
            files[f"blobs/sha256/{sha(nested)}"] = nested
            desc = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": f"sha256:{sha(nested)}"}
        annotations = {"io.containerd.image.name": f"docker.io/library/{tags[0]}"} if tags else {}
        index.append({**desc, "annotations": annotations})
        manifest_json.append(
            {
                "Config": f"blobs/sha256/{sha(config)}",
                "RepoTags": tags,
                "Layers": [f"blobs/sha256/{sha(b)}" for b in blobs],
            }
        )
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": index}).encode()
    if with_manifest_json:
        files["manifest.json"] = json.dumps(manifest_json).encode()
    return tar_of(files)


class Body:
    """An aiohttp-StreamReader-like body that hands out small chunks."""

    def __init__(self, data: bytes, chunk: int = 7000) -> None:
        self._buf = io.BytesIO(data)
        self._chunk = chunk

    async def read(self, n: int = -1) -> bytes:
        return self._buf.read(min(n, self._chunk) if n > 0 else self._chunk)


BASE = tar_of({"bin/": None, "bin/sh": b"#!shell", "etc/": None, "etc/os-release": b"ID=test\n"})
APP = tar_of({"app/": None, "app/run": b"run"})
OTHER = tar_of({"srv/": None, "srv/data": b"other"})


async def load_all(svc: ImageService, data: bytes) -> list[dict[str, Any]]:
    return [m async for m in svc.load(Body(data))]


def layer_count(root: Path) -> int:
    return len(list((root / "image/layers/sha256").iterdir()))


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def svc(tmp_path: Path, bus: EventBus) -> ImageService:
    return ImageService(tmp_path, bus)


# ---- import ----------------------------------------------------------------------------------------


async def test_import_builds_a_docker_like_config(svc: ImageService, tmp_path: Path) -> None:
    image_id = await svc.import_image(
        Body(gzip.compress(BASE)),
        "busybox",
        None,
        ['CMD ["sh"]', "ENV PATH=/bin", "WORKDIR /root"],
        None,
        None,
    )
    record = await svc.resolve("busybox")
    assert record.id == image_id and record.repo_tags == ["busybox:latest"]
    cfg = record.config
    assert image_id == "sha256:" + sha(next((tmp_path / "image/imagedb/sha256").iterdir()).read_bytes())
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + sha(BASE)]}
    assert (cfg["os"], cfg["architecture"]) == ("linux", "amd64")
    assert cfg["config"]["Cmd"] == ["sh"] and cfg["config"]["Env"] == ["PATH=/bin"]
    assert cfg["config"]["WorkingDir"] == "/root"
    assert cfg["history"] == [{"created": cfg["created"], "comment": "Imported from -"}]
    assert 0 < parse_rfc3339(cfg["created"]) <= time.time_ns()
    [lower] = svc.layer_dirs(image_id)
    assert (Path(lower) / "etc/os-release").read_bytes() == b"ID=test\n"
    info = svc.inspect("busybox:latest")
    assert info["Comment"] == "Imported from -" and info["Size"] == len(b"#!shellID=test\n")
    assert info["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z"


async def test_import_checks_its_parameters_before_reading(svc: ImageService) -> None:
    body = Body(BASE)
    with pytest.raises(InvalidParameter, match="run is not a valid change command"):
        await svc.import_image(body, None, None, ["RUN x"], None, None)
    with pytest.raises(InvalidParameter, match="operating system is not supported"):
        await svc.import_image(body, None, None, [], None, "windows/amd64")
    with pytest.raises(InvalidParameter, match="must be lowercase"):
        await svc.import_image(body, "UPPER", None, [], None, None)
    assert await body.read(10) == BASE[:10]


async def test_importing_the_same_content_twice_shares_the_layer(svc: ImageService, tmp_path: Path) -> None:
    a = await svc.import_image(Body(BASE), "a", None, [], "first", None)
    b = await svc.import_image(Body(BASE), "b", None, [], "second", None)
    assert a != b  # different configs (comment), one layer
    assert layer_count(tmp_path) == 1
    assert svc.layer_dirs(a) == svc.layer_dirs(b)
    assert list((tmp_path / "image/staging").iterdir()) == []


# ---- resolve ---------------------------------------------------------------------------------------


async def test_resolve_by_name_id_prefix_and_errors(svc: ImageService) -> None:
    await load_all(
        svc, classic_save([(image_config([BASE]), [BASE], ["busybox:1.36", "127.0.0.1:5055/smoke/built:1"])])
    )
    image_id = (await svc.resolve("busybox:1.36")).id
    hexid = image_id.removeprefix("sha256:")
    for ref in [
        image_id,
        hexid,
        hexid[:12],
        hexid[:1],
        "sha256:" + hexid[:5],
        "docker.io/library/busybox:1.36",
        "127.0.0.1:5055/smoke/built:1",
    ]:
        assert (await svc.resolve(ref)).id == image_id, ref
    with pytest.raises(NotFound, match=r"^No such image: busybox:latest$"):
        await svc.resolve("busybox")
    with pytest.raises(NotFound, match=r"^No such image: 127.0.0.1:5055/smoke/built:latest$"):
        await svc.resolve("127.0.0.1:5055/smoke/built")
    with pytest.raises(NotFound, match=f"No such image: sha256:{'0' * 64}"):
        await svc.resolve("0" * 64)
    with pytest.raises(InvalidParameter, match="invalid reference format"):
        await svc.resolve("Not/Valid!")


async def test_resolve_is_served_from_memory(svc: ImageService, tmp_path: Path) -> None:
    image_id = await svc.import_image(Body(BASE), "busybox", None, [], None, None)
    (tmp_path / "image/repositories.json").unlink()
    for f in (tmp_path / "image/imagedb/sha256").iterdir():
        f.unlink()
    record = await svc.resolve("busybox")
    assert record.id == image_id
    record.config["config"]["Cmd"] = ["changed"]  # a copy: the store keeps its own
    assert (await svc.resolve("busybox")).config["config"]["Cmd"] is None


# ---- load --------------------------------------------------------------------------------------------


async def test_load_classic_layout_shares_layers(svc: ImageService, tmp_path: Path) -> None:
    base_cfg = image_config([BASE], created="2024-01-01T00:00:00Z")
    app_cfg = image_config([BASE, APP], created="2024-02-01T00:00:00Z")
    archive = classic_save([(base_cfg, [BASE], ["busybox:latest"]), (app_cfg, [BASE, APP], ["app:1"])])
    messages = await load_all(svc, archive)
    assert messages == [{"stream": "Loaded image: busybox:latest\n"}, {"stream": "Loaded image: app:1\n"}]
    assert layer_count(tmp_path) == 2  # BASE is unpacked once for both images
    app = await svc.resolve("app:1")
    assert app.id == "sha256:" + sha(app_cfg)
    top, bottom = svc.layer_dirs(app.id)
    assert (Path(top) / "app/run").exists() and (Path(bottom) / "bin/sh").exists()
    assert svc.layer_dirs((await svc.resolve("busybox")).id) == [bottom]
    chain = chain_ids(["sha256:" + sha(BASE), "sha256:" + sha(APP)])
    assert Path(top).parent.name == chain[1].removeprefix("sha256:")
    assert (Path(top).parent / "parent").read_text() == chain[0]
    assert (await load_all(svc, archive))[0] == {"stream": "Loaded image: busybox:latest\n"}
    assert layer_count(tmp_path) == 2
    assert list((tmp_path / "tmp").iterdir()) == []  # the spooled upload is gone


async def test_load_docker25_oci_layout(svc: ImageService, tmp_path: Path) -> None:
    cfg = image_config([BASE, APP], Labels={"maintainer": "me"})
    messages = await load_all(svc, oci_save([(cfg, [BASE, APP], ["app:2"])]))
    assert messages == [{"stream": "Loaded image: app:2\n"}]
    info = svc.inspect("app:2")
    assert info["Id"] == "sha256:" + sha(cfg)
    assert info["RootFS"]["Layers"] == ["sha256:" + sha(BASE), "sha256:" + sha(APP)]
    assert info["Config"]["Labels"] == {"maintainer": "me"}
    assert info["GraphDriver"]["Data"]["LowerDir"] == svc.layer_dirs(info["Id"])[1]


async def test_load_plain_oci_index_with_gzip_layers(svc: ImageService) -> None:
    cfg = image_config([BASE])
    messages = await load_all(
        svc, oci_save([(cfg, [BASE], ["busybox:oci"])], with_manifest_json=False, gzip_layers=True)
    )
    assert messages == [{"stream": "Loaded image: busybox:oci\n"}]
    assert (await svc.resolve("busybox:oci")).id == "sha256:" + sha(cfg)


async def test_load_untagged_and_moved_tags(svc: ImageService) -> None:
    first, second = (
        image_config([BASE], created="2024-01-01T00:00:00Z"),
        image_config([BASE], created="2024-01-02T00:00:00Z"),
    )
    assert await load_all(svc, classic_save([(first, [BASE], [])])) == [
        {"stream": f"Loaded image ID: sha256:{sha(first)}\n"}
    ]
    await load_all(svc, classic_save([(first, [BASE], ["x:1"])]))
    assert await load_all(svc, classic_save([(second, [BASE], ["x:1"])])) == [
        {
            "stream": f"The image x:1 already exists, renaming the old one with ID sha256:{sha(first)} "
            "to empty string\n"
        },
        {"stream": "Loaded image: x:1\n"},
    ]
    assert svc.count() == 2


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (classic_save([(image_config([BASE]), [APP], ["bad:1"])]), "invalid diffID"),
        (
            classic_save([(image_config([BASE, APP]), [BASE], ["bad:1"])]),
            "layers length mismatch: expected 2, got 1",
        ),
        (classic_save([(image_config([BASE]), [BASE], ["Bad:1"])]), "must be lowercase"),
        (tar_of({"hello.txt": b"hi"}), "manifest.json not found"),
        (b"garbage" * 100, "archive/tar: invalid tar header"),
    ],
)
async def test_load_rejects_bad_archives(
    svc: ImageService, tmp_path: Path, archive: bytes, message: str
) -> None:
    with pytest.raises(InvalidParameter, match=message):
        await load_all(svc, archive)
    assert svc.count() == 0
    assert layer_count(tmp_path) == 0
    assert list((tmp_path / "image/staging").iterdir()) == []
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_a_failed_load_keeps_no_layers_but_those_in_use(svc: ImageService, tmp_path: Path) -> None:
    await load_all(svc, classic_save([(image_config([BASE]), [BASE], ["base:1"])]))
    with pytest.raises(InvalidParameter, match="invalid diffID"):
        await load_all(svc, classic_save([(image_config([OTHER, BASE]), [OTHER, APP], ["bad:1"])]))
    assert layer_count(tmp_path) == 1  # OTHER, unpacked for the failed image, is gone; BASE is in use


# ---- tag / delete ------------------------------------------------------------------------------------


async def test_tag_untag_delete_and_layer_gc(svc: ImageService, tmp_path: Path, bus: EventBus) -> None:
    base_cfg, app_cfg = image_config([BASE]), image_config([BASE, APP])
    await load_all(
        svc, classic_save([(base_cfg, [BASE], ["busybox:latest"]), (app_cfg, [BASE, APP], ["app:1"])])
    )
    base_id, app_id = "sha256:" + sha(base_cfg), "sha256:" + sha(app_cfg)
    svc.tag("busybox", "127.0.0.1:5055/smoke/built", "1")
    assert svc.inspect("127.0.0.1:5055/smoke/built:1")["RepoTags"] == [
        "127.0.0.1:5055/smoke/built:1",
        "busybox:latest",
    ]
    assert svc.delete("busybox:latest", False, False) == [{"Untagged": "busybox:latest"}]
    assert svc.count() == 2
    app_layers = svc.layer_dirs(app_id)
    assert svc.delete("app:1", False, False) == [
        {"Untagged": "app:1"},
        {"Deleted": app_id},
        {"Deleted": chain_ids(["sha256:" + sha(BASE), "sha256:" + sha(APP)])[1]},
    ]
    assert not Path(app_layers[0]).exists() and Path(app_layers[1]).exists()  # BASE still used
    records = svc.delete("127.0.0.1:5055/smoke/built:1", False, False)
    assert records[-1] == {"Deleted": "sha256:" + sha(BASE)} and records[-2] == {"Deleted": base_id}
    assert layer_count(tmp_path) == 0 and svc.count() == 0
    assert json.loads((tmp_path / "image/repositories.json").read_bytes()) == {"Repositories": {}}
    actions = [(e["Action"], e["Actor"]["Attributes"]["name"]) for e in bus._history]
    assert ("load", base_id) in actions and ("tag", "127.0.0.1:5055/smoke/built:1") in actions
    assert ("untag", base_id) in actions and ("delete", app_id) in actions
    with pytest.raises(NotFound, match="No such image: app:1"):
        svc.delete("app:1", False, False)


async def test_delete_by_id_with_several_tags_needs_force(svc: ImageService) -> None:
    image_id = await svc.import_image(Body(BASE), "a", "1", [], None, None)
    svc.tag(image_id, "b", None)
    short = image_id[7:19]
    with pytest.raises(
        Conflict,
        match=rf"^conflict: unable to delete {short} \(must be forced\) - "
        r"image is referenced in multiple repositories$",
    ):
        svc.delete(short, False, False)
    assert svc.delete(short, True, False) == [
        {"Untagged": "a:1"},
        {"Untagged": "b:latest"},
        {"Deleted": image_id},
        {"Deleted": "sha256:" + sha(BASE)},
    ]


async def test_delete_single_tagged_image_by_id_untags_it(svc: ImageService) -> None:
    image_id = await svc.import_image(Body(BASE), "a", "1", [], None, None)
    assert svc.delete(image_id, False, False)[:2] == [{"Untagged": "a:1"}, {"Deleted": image_id}]


async def test_delete_conflicts_with_containers(svc: ImageService, tmp_path: Path) -> None:
    image_id = await svc.import_image(Body(BASE), "busybox", None, [], None, None)
    users: dict[str, list[tuple[str, bool]]] = {image_id: [("c" * 64, False)]}
    svc.set_usage_checker(lambda i: users.get(i, []))
    short = image_id[7:19]
    with pytest.raises(
        Conflict,
        match=r'^conflict: unable to remove repository reference "busybox" \(must force\) - '
        rf"container cccccccccccc is using its referenced image {short}$",
    ):
        svc.delete("busybox", False, False)
    with pytest.raises(
        Conflict,
        match=rf"^conflict: unable to delete {short} \(must be forced\) - "
        r"image is being used by stopped container cccccccccccc$",
    ):
        svc.delete(image_id, False, False)
    users[image_id] = [("r" * 64, True)]
    with pytest.raises(
        Conflict,
        match=rf"^conflict: unable to delete {short} \(cannot be forced\) - "
        r"image is being used by running container rrrrrrrrrrrr$",
    ):
        svc.delete(image_id, True, False)
    users[image_id] = [("c" * 64, False)]
    lowers = svc.layer_dirs(image_id)
    assert svc.delete(image_id, True, False) == [{"Untagged": "busybox:latest"}, {"Deleted": image_id}]
    # gone for users, but the stopped container can still start from its layers
    assert svc.count() == 0 and svc.list(True, {}) == []
    with pytest.raises(NotFound):
        await svc.resolve(image_id)
    assert svc.layer_dirs(image_id) == lowers and Path(lowers[0]).is_dir()
    ImageService(tmp_path, EventBus()).layer_dirs(image_id)  # kept across restarts too
    svc.collect_garbage()
    assert Path(lowers[0]).is_dir()
    users.clear()  # the container was removed
    svc.collect_garbage()
    assert not Path(lowers[0]).exists() and layer_count(tmp_path) == 0


async def test_tag_errors(svc: ImageService) -> None:
    await svc.import_image(Body(BASE), "a", None, [], None, None)
    with pytest.raises(NotFound, match="No such image: nope:latest"):
        svc.tag("nope", "b", None)
    with pytest.raises(InvalidParameter, match="digest"):
        svc.tag("a", "b@sha256:" + "0" * 64, None)
    with pytest.raises(InvalidParameter, match="ambiguous"):
        svc.tag("a", "sha256", "x")
    with pytest.raises(InvalidParameter, match="invalid reference format"):
        svc.tag("a", "", None)


# ---- restart -----------------------------------------------------------------------------------------


async def test_restart_rederives_state_and_cleans_leftovers(tmp_path: Path, bus: EventBus) -> None:
    svc = ImageService(tmp_path, bus)
    app_cfg = image_config([BASE, APP])
    await load_all(svc, classic_save([(app_cfg, [BASE, APP], ["app:1", "app:2"])]))
    before = svc.inspect("app:1")
    # a crash mid-unpack, a layer whose image was never written, and an image whose layer is missing
    (tmp_path / "image/staging/deadbeef/diff").mkdir(parents=True)
    orphan = tmp_path / "image/layers/sha256" / ("e" * 64)
    (orphan / "diff").mkdir(parents=True)
    (orphan / "diff_id").write_text("sha256:" + "e" * 64)
    (orphan / "size").write_text("0")
    (tmp_path / "tmp/image-upload-1234.tar").write_bytes(b"half an upload")
    broken = image_config([OTHER])
    (tmp_path / "image/imagedb/sha256" / sha(broken)).write_bytes(broken)

    again = ImageService(tmp_path, bus)
    assert again.inspect("app:1") == before
    assert again.count() == 1
    assert (await again.resolve("app:2")).repo_tags == ["app:1", "app:2"]
    assert not orphan.exists()
    assert list((tmp_path / "tmp").iterdir()) == []
    assert list((tmp_path / "image/staging").iterdir()) == []
    assert layer_count(tmp_path) == 2


# ---- list / inspect / create ---------------------------------------------------------------------------


async def test_list_filters_and_dangling_images(svc: ImageService) -> None:
    old = image_config([BASE], created="2024-01-01T00:00:00Z", Labels={"tier": "base"})
    mid = image_config([BASE, APP], created="2024-02-01T00:00:00Z", Labels={"tier": "app", "team": "x"})
    new = image_config([OTHER], created="2024-03-01T00:00:00.5Z")
    await load_all(
        svc,
        classic_save(
            [
                (old, [BASE], ["busybox:latest"]),
                (mid, [BASE, APP], ["127.0.0.1:5055/smoke/app:1"]),
                (new, [OTHER], []),
            ]
        ),
    )
    ids = {n: "sha256:" + sha(c) for n, c in (("old", old), ("mid", mid), ("new", new))}

    def listed(all_: bool = False, **filters: list[str]) -> list[str]:
        return [i["Id"] for i in svc.list(all_, filters)]

    assert listed() == [ids["new"], ids["mid"], ids["old"]]  # newest first, dangling included
    summary = svc.list(False, {})[0]
    assert summary["RepoTags"] == [] and summary["Created"] == 1709251200 and summary["SharedSize"] == -1
    assert svc.list(False, {})[1]["Size"] == len(b"#!shellID=test\n") + len(b"run")
    assert listed(dangling=["true"]) == [ids["new"]]
    assert listed(dangling=["false"]) == [ids["mid"], ids["old"]]
    assert listed(reference=["busy*"]) == [ids["old"]]
    assert listed(reference=["*/smoke/*:1"]) == [ids["mid"]]
    assert listed(label=["tier"]) == [ids["mid"], ids["old"]]
    assert listed(label=["tier=app", "team"]) == [ids["mid"]]
    assert listed(before=["127.0.0.1:5055/smoke/app:1"]) == [ids["old"]]
    assert listed(since=["busybox"]) == [ids["new"], ids["mid"]]
    assert listed(until=["2024-02-15T00:00:00Z"]) == [ids["mid"], ids["old"]]
    with pytest.raises(InvalidParameter, match="invalid filter 'colour'"):
        listed(colour=["red"])
    with pytest.raises(NotFound):
        listed(before=["nope"])


async def test_create_image_records_parent_and_children_block_deletes(
    svc: ImageService, tmp_path: Path
) -> None:
    base = await svc.import_image(Body(BASE), "base", None, [], None, None)
    layer = tmp_path / "diff.tar"
    layer.write_bytes(APP)
    config = json.loads(json.dumps((await svc.resolve(base)).config))
    config["config"]["Cmd"] = ["/app/run"]
    child = await svc.create_image(config, base, layer)
    assert svc.inspect(child)["Parent"] == base
    assert svc.inspect(child)["RootFS"]["Layers"] == ["sha256:" + sha(BASE), "sha256:" + sha(APP)]
    assert [i["ParentId"] for i in svc.list(False, {}) if i["Id"] == child] == [base]
    short = base[7:19]
    with pytest.raises(
        Conflict, match=rf"unable to delete {short} \(cannot be forced\) - image has dependent child images"
    ):
        svc.delete(base, True, False)
    # untagging the base keeps it (a child needs it); it is only hidden from the default list
    assert svc.delete("base", False, False) == [{"Untagged": "base:latest"}]
    assert [i["Id"] for i in svc.list(False, {})] == [child]
    assert {i["Id"] for i in svc.list(True, {})} == {child, base}
    assert [i["Id"] for i in svc.list(True, {"dangling": ["true"]})] == [child]  # base is intermediate
    # deleting the child prunes the untagged parent too
    records = svc.delete(child, False, False)
    assert {"Deleted": child} in records and {"Deleted": base} in records
    assert layer_count(tmp_path) == 0


async def test_zero_layer_images_get_an_empty_lower_dir(svc: ImageService) -> None:
    cfg = image_config([])
    await load_all(svc, classic_save([(cfg, [], ["scratchy:1"])]))
    [lower] = svc.layer_dirs("sha256:" + sha(cfg))
    assert os.path.isdir(lower) and os.listdir(lower) == []
    assert svc.inspect("scratchy:1")["GraphDriver"] == {"Data": None, "Name": "overlay2"}


@pytest.mark.root
async def test_layer_dirs_stack_as_overlayfs_lower_dirs(svc: ImageService, tmp_path: Path) -> None:
    """The real consumer: overlayfs applies our whiteouts and opaque dirs when it stacks the layers."""
    import subprocess

    base = tar_of(
        {
            "bin/": None,
            "bin/sh": b"sh",
            "etc/": None,
            "etc/os-release": b"x",
            "var/": None,
            "var/cache/": None,
            "var/cache/old": b"old",
        }
    )
    top = tar_of(
        {
            "etc/": None,
            "etc/.wh.os-release": b"",
            "var/cache/": None,
            "var/cache/.wh..wh..opq": b"",
            "var/cache/new": b"new",
        }
    )
    await load_all(svc, classic_save([(image_config([base, top]), [base, top], ["stacked:1"])]))
    lowers = svc.layer_dirs((await svc.resolve("stacked:1")).id)
    merged = tmp_path / "merged"
    merged.mkdir()
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", "lowerdir=" + ":".join(lowers), str(merged)], check=True
    )
    try:
        assert (merged / "bin/sh").read_bytes() == b"sh"
        assert not (merged / "etc/os-release").exists()
        assert sorted(os.listdir(merged / "var/cache")) == ["new"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)


async def test_an_unreadable_image_keeps_every_layer_at_restart(tmp_path: Path, bus: EventBus) -> None:
    svc = ImageService(tmp_path, bus)
    await load_all(svc, classic_save([(image_config([BASE, APP]), [BASE, APP], ["app:1"])]))
    image_id = (await svc.resolve("app:1")).id
    # a config we cannot trust (a disk error, a hand edit): we no longer know which layers it needs
    (tmp_path / "image/imagedb/sha256" / image_id.removeprefix("sha256:")).write_bytes(b"{not json")
    again = ImageService(tmp_path, bus)
    assert again.count() == 0
    assert layer_count(tmp_path) == 2


# ---- hostile archives (issue 5) ----------------------------------------------------------------------


def corrupt_at(data: bytes, name: str) -> bytes:
    """`data` with the checksum of member `name`'s header broken."""
    at = data.index(name.encode() + b"\0")
    return data[: at + 148] + b"0000000\0" + data[at + 156 :]


def nothing_left(svc: ImageService, tmp_path: Path) -> None:
    assert svc.count() == 0
    assert layer_count(tmp_path) == 0
    assert list((tmp_path / "image/staging").iterdir()) == []
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_import_refuses_a_corrupt_header_in_the_middle(svc: ImageService, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match=r"^archive/tar: invalid tar header$"):
        await svc.import_image(Body(corrupt_at(BASE, "etc/")), "broken", None, [], None, None)
    nothing_left(svc, tmp_path)  # tarfile stopped there and made an image of bin/ alone


LAYER_FAULTS = [
    (corrupt_at(BASE, "etc/"), "archive/tar: invalid tar header"),
    (BASE[:1600], "unexpected EOF"),  # inside the header of etc/
    (tar_of({"d/": None}, hardlinks={"l": "d"}), "link /d /l: operation not permitted"),
    (tar_of({"x" * 300: b"x"}), f"open /{'x' * 300}: file name too long"),
]


@pytest.mark.parametrize(("layer", "message"), LAYER_FAULTS)
async def test_load_reports_layer_faults_in_dockers_words(
    svc: ImageService, tmp_path: Path, layer: bytes, message: str
) -> None:
    with pytest.raises(InvalidParameter, match=f"^{re.escape(message)}$"):
        await load_all(svc, classic_save([(image_config([layer]), [layer], ["bad:1"])]))
    nothing_left(svc, tmp_path)


async def test_load_refuses_a_corrupt_header_anywhere_in_the_archive(
    svc: ImageService, tmp_path: Path
) -> None:
    archive = classic_save([(image_config([BASE]), [BASE], ["x:1"])])
    broken = corrupt_at(archive, "manifest.json")  # tarfile found no manifest after it: another error
    with pytest.raises(InvalidParameter, match=r"^archive/tar: invalid tar header$"):
        await load_all(svc, broken + tar_of({"after": b"more"}))
    nothing_left(svc, tmp_path)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
async def test_load_takes_compressed_archives(svc: ImageService, compress: Any) -> None:
    cfg = image_config([BASE, APP])
    archive = classic_save([(cfg, [BASE, APP], ["z:1"]), (image_config([BASE]), [BASE], ["z:0"])])
    assert await load_all(svc, compress(archive)) == [
        {"stream": "Loaded image: z:1\n"},
        {"stream": "Loaded image: z:0\n"},
    ]
    assert (await svc.resolve("z:1")).id == "sha256:" + sha(cfg)


async def test_a_failed_very_deep_layer_leaves_an_empty_trash(svc: ImageService, tmp_path: Path) -> None:
    deep = "/".join(["a"] * 1200) + "/f"  # deeper than the recursion limit (1000)
    layer = corrupt_at(tar_of({deep: b"x", "zz": b"after"}), "zz")
    try:
        with pytest.raises(InvalidParameter, match=r"^archive/tar: invalid tar header$"):
            await svc.import_image(Body(layer), "deep", None, [], None, None)
        trash = tmp_path / "image/trash"
        for _ in range(200):  # the purge runs in a thread of its own
            if not any(trash.iterdir()):
                break
            await asyncio.sleep(0.05)
        assert list(trash.iterdir()) == []  # shutil.rmtree died of RecursionError, the tree stayed
        nothing_left(svc, tmp_path)
    finally:  # what is left would make pytest's own clean-up (shutil.rmtree) fail
        subprocess.run(["rm", "-rf", str(tmp_path / "image")], check=True)
