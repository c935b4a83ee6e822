"""Request bodies to files: spool writes all of a stream, and nothing when the stream fails."""

from pathlib import Path

import pytest

from daemon.images.uploads import CHUNK, SPOOL_PREFIX, remove_stale_spools, spool


class _Body:
    """An aiohttp StreamReader's `read`, from chunks; an exception among them is raised in turn."""

    def __init__(self, *chunks: bytes | Exception) -> None:
        self.chunks = list(chunks)

    async def read(self, n: int = -1) -> bytes:
        assert n == CHUNK
        if not self.chunks:
            return b""
        item = self.chunks.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


async def test_spool_writes_the_whole_body_to_a_new_file(tmp_path: Path) -> None:
    directory = tmp_path / "tmp"  # made when missing
    first = await spool(_Body(b"abc", b"", b"def"), directory)  # an empty read is the end
    second = await spool(_Body(b"x" * 3, b"y"), directory)
    assert first.read_bytes() == b"abc"
    assert second.read_bytes() == b"xxxy"
    assert first != second and first.parent == second.parent == directory
    assert first.name.startswith(SPOOL_PREFIX)


async def test_spool_leaves_nothing_when_the_client_goes(tmp_path: Path) -> None:
    with pytest.raises(ConnectionResetError):
        await spool(_Body(b"abc", ConnectionResetError()), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_remove_stale_spools_keeps_other_files(tmp_path: Path) -> None:
    (tmp_path / f"{SPOOL_PREFIX}1.tar").write_bytes(b"")
    (tmp_path / "other").write_bytes(b"")
    remove_stale_spools(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["other"]
