"""A minimal root file system around a static busybox, written straight into a tarball.

Tests, `make run` and the benchmark import it as the `busybox:latest` image, so nothing has to be pulled.
The binary must be static: the image has no libc or dynamic loader for it to use.

    python -m daemon.tools.busybox_rootfs busybox.tar
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import struct
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path

# Debian's busybox-static installs /bin/busybox (the same file as /usr/bin/busybox on merged-/usr systems).
CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
PT_INTERP = 3

# Directories of the image and their modes. /tmp is world-writable with the sticky bit, like on any host.
DIRECTORIES: tuple[tuple[str, int], ...] = (
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("var", 0o755),
    ("var/tmp", 0o1777),
)

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def is_static_elf(path: str | os.PathLike[str]) -> bool:
    """True for an ELF executable without a PT_INTERP program header, i.e. one that needs no loader."""
    with open(path, "rb") as f:
        ident = f.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            return False
        elf_class, data = ident[4], ident[5]
        if elf_class not in (1, 2) or data not in (1, 2):
            return False
        order = "<" if data == 1 else ">"
        # After e_ident: e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags,
        # e_ehsize, e_phentsize, e_phnum; the address-sized fields are 4 or 8 bytes.
        fmt = order + ("HHIIIIIHHH" if elf_class == 1 else "HHIQQQIHHH")
        header = f.read(struct.calcsize(fmt))
        if len(header) < struct.calcsize(fmt):
            return False
        _, _, _, _, phoff, _, _, _, phentsize, phnum = struct.unpack(fmt, header)
        if phnum == 0 or phentsize < 4:
            return False
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            raw = f.read(4)
            if len(raw) < 4:
                return False
            (p_type,) = struct.unpack(order + "I", raw)
            if p_type == PT_INTERP:
                return False
    return True


def busybox_path() -> str:
    """The path of a statically linked busybox on this host (Debian package busybox-static)."""
    found = shutil.which("busybox")
    seen: list[str] = []
    for candidate in (*CANDIDATES, *([found] if found else [])):
        if candidate in seen or not os.path.isfile(candidate):
            continue
        seen.append(candidate)
        if is_static_elf(candidate):
            return candidate
    detail = f" ({', '.join(seen)} is dynamically linked)" if seen else ""
    raise FileNotFoundError(f"no statically linked busybox found{detail}: apt-get install busybox-static")


def applets(busybox: str) -> list[str]:
    """The applet names the binary provides, as `busybox --list` prints them."""
    out = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True, timeout=30).stdout
    names = {name.strip() for name in out.splitlines()}
    return sorted(n for n in names if n and "/" not in n and n not in (".", "..", "busybox"))


def _info(name: str, type_: bytes, mode: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.mode = mode
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int, mtime: int) -> None:
    info = _info(name, tarfile.REGTYPE, mode, mtime)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def build_rootfs_tar(
    dest: Path,
    busybox: str | None = None,
    extra_files: Mapping[str, bytes] | None = None,
) -> None:
    """Write a root file system tarball to `dest`: busybox, one symlink per applet in /bin, users, groups.

    `busybox` defaults to busybox_path(); a path given here is used as it is. `extra_files` maps paths
    inside the image (without a leading slash, their directories must be in the image) to contents.
    All entries belong to root, and their times are the binary's, so the same busybox gives the same
    tarball byte for byte (and so the same layer digest). The file is written under a temporary name
    and renamed, so a reader never sees half a tarball.
    """
    source = busybox or busybox_path()
    names = applets(source)
    if "sh" not in names:
        names.append("sh")  # every image needs /bin/sh; busybox runs as sh when called by that name
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp")
    with open(source, "rb") as src:
        st = os.fstat(src.fileno())
        mtime = int(st.st_mtime)
        try:
            with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
                for name, mode in DIRECTORIES:
                    tar.addfile(_info(name, tarfile.DIRTYPE, mode, mtime))
                binary = _info("bin/busybox", tarfile.REGTYPE, 0o755, mtime)
                binary.size = st.st_size
                tar.addfile(binary, src)
                for applet in sorted(names):
                    link = _info(f"bin/{applet}", tarfile.SYMTYPE, 0o777, mtime)
                    link.linkname = "busybox"
                    tar.addfile(link)
                # For scripts that start with #!/usr/bin/env.
                env = _info("usr/bin/env", tarfile.SYMTYPE, 0o777, mtime)
                env.linkname = "../../bin/busybox"
                tar.addfile(env)
                _add_file(tar, "etc/passwd", PASSWD.encode(), 0o644, mtime)
                _add_file(tar, "etc/group", GROUP.encode(), 0o644, mtime)
                for path, data in sorted((extra_files or {}).items()):
                    _add_file(tar, path.lstrip("/"), data, 0o644, mtime)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a static-busybox root file system as a tarball.")
    parser.add_argument("dest", type=Path, help="the tarball to write")
    parser.add_argument("--busybox", help="the busybox binary (default: the static one on this host)")
    args = parser.parse_args(argv)
    build_rootfs_tar(args.dest, args.busybox)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
