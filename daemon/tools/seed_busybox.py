"""`python -m daemon.tools.seed_busybox --data-root DIR`: give a store with no busybox:latest one.

Used by `make run`, so that `docker run --rm busybox echo hi` works at once on an offline machine:
the image is imported from Debian's busybox-static (installed by the Makefile) into the store directly.
"""

import argparse
import asyncio
import io
from pathlib import Path

from daemon.errors import NotFound
from daemon.events.bus import EventBus
from daemon.images.service import ImageService
from daemon.tools.busybox_rootfs import build_rootfs_tar

CHANGES = ['CMD ["sh"]']


class _BytesStream:
    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    async def read(self, n: int = -1) -> bytes:
        return self._buf.read(n)


async def seed(data_root: Path, ref: str = "busybox:latest") -> str | None:
    """Import busybox as `ref` unless the store has it; the new image ID, or None when present."""
    images = ImageService(data_root, EventBus())
    try:
        await images.resolve(ref)
        return None
    except NotFound:
        pass
    tar = data_root / "tmp" / "busybox-rootfs.tar"
    tar.parent.mkdir(parents=True, exist_ok=True)
    build_rootfs_tar(tar)
    try:
        repo, _, tag = ref.rpartition(":")
        return await images.import_image(_BytesStream(tar.read_bytes()), repo, tag, CHANGES, None, None)
    finally:
        tar.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Import busybox:latest from busybox-static when missing.")
    p.add_argument("--data-root", default="/var/lib/pydockerd")
    args = p.parse_args(argv)
    image_id = asyncio.run(seed(Path(args.data_root)))
    print(f"imported busybox:latest as {image_id}" if image_id else "busybox:latest is already there")


if __name__ == "__main__":
    main()
