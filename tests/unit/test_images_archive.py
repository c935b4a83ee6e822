"""SaveArchive on spooled files: only the members it needs are remembered, whatever the archive holds."""

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest

from daemon.errors import InvalidParameter
from daemon.images.archive import SaveArchive
from tests.tarcraft import ManyFiles, end, header, regular
from tests.unit.test_images_service import BASE, classic_save, image_config, sha


def spooled(tmp_path: Path, *parts: bytes, name: str = "upload.tar") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(parts))
    return path


def junk_then_image(tmp_path: Path, junk: int) -> Path:
    """A valid save archive whose first `junk` members nobody refers to (as a hostile one would)."""
    image = classic_save([(image_config([BASE]), [BASE], ["x:1"])])
    path = tmp_path / f"junk-{junk}.tar"
    with open(path, "wb") as f:
        many = ManyFiles(junk, prefix="junk", with_end=False)
        while chunk := many.read(1 << 20):
            f.write(chunk)
        f.write(image)
    return path


def _peak_while_loading(path: Path) -> int:
    tracemalloc.start()
    try:
        with SaveArchive(path) as archive:
            [image] = archive.images()
            with archive.open(image.layers[0]) as layer:
                assert layer.read() == BASE
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_members(tmp_path: Path) -> None:
    small = _peak_while_loading(junk_then_image(tmp_path, 500))
    large = _peak_while_loading(junk_then_image(tmp_path, 5_000))  # traced: slow, so not more
    assert large < small + (256 << 10), (small, large)  # getmembers() kept ~550 bytes each: +2.5 MiB


def test_links_inside_the_archive_are_followed(tmp_path: Path) -> None:
    config = image_config([BASE])
    manifest = json.dumps([{"Config": "c.json", "Layers": ["a/layer.tar"], "RepoTags": ["x:1"]}]).encode()
    path = spooled(
        tmp_path,
        header("a/layer.tar", b"2", linkname="../b/layer.tar"),  # a symlink, relative to a/
        header("b/layer.tar", b"1", linkname="c/real.tar"),  # a hardlink, from the root
        regular("c/real.tar", BASE),
        regular("c.json", config),
        regular("manifest.json", manifest),
        end(),
    )
    with SaveArchive(path) as archive:
        [image] = archive.images()
        assert image.config == config and image.repo_tags == ["x:1"]
        with archive.open(image.layers[0]) as f:
            assert f.read() == BASE


def test_a_manifest_naming_too_many_files_is_refused(tmp_path: Path) -> None:
    layers = [f"l{i}/layer.tar" for i in range(10_000)]  # with c.json: one over MAX_INDEXED
    manifest = json.dumps([{"Config": "c.json", "Layers": layers}]).encode()
    path = spooled(tmp_path, regular("manifest.json", manifest), end())
    with (
        SaveArchive(path) as archive,
        pytest.raises(InvalidParameter, match="refers to more than 10000 files"),
    ):
        archive.images()


def test_a_compressed_archive_is_read_through_its_decompressor(tmp_path: Path) -> None:
    config = image_config([BASE])
    archive_bytes = classic_save([(config, [BASE], ["x:1"])])
    path = spooled(tmp_path, gzip.compress(archive_bytes), name="upload.tar.gz")
    with SaveArchive(path) as archive:
        [image] = archive.images()
        assert sha(image.config) == sha(config)
        with archive.open(image.layers[0]) as f:
            assert f.read() == BASE


def test_members_of_types_docker_refuses_are_refused(tmp_path: Path) -> None:
    path = spooled(tmp_path, header("label", b"V"), regular("manifest.json", b"[]"), end())
    with pytest.raises(InvalidParameter, match=r"^unhandled tar header type 86$"):
        SaveArchive(path)
