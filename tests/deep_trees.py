"""Building the trees that broke the daemon: deeper than Python's recursion limit and than PATH_MAX."""

import os
from pathlib import Path

from daemon.files.trees import DIR_FLAGS

# A shell function for a container (busybox sh): `deep N NAME` builds N nested directories NAME in the
# current directory and writes "x\n" at the bottom. `cd -P` keeps the shell from building the path,
# which soon exceeds PATH_MAX.
DEEP_SH = (
    "deep() { i=0; while [ $i -lt $1 ]; do mkdir $2 && cd -P $2 || exit 1; i=$((i+1)); done; echo x > f; }"
)


def make_chain(top: Path, depth: int, name: str = "d", payload: bytes = b"") -> None:
    """`depth` nested directories under `top`, built through dir fds (the path soon exceeds PATH_MAX),
    with a file holding `payload` at the bottom."""
    fd = os.open(top, DIR_FLAGS)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        out = os.open("bottom", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, payload)
        os.close(out)
    finally:
        os.close(fd)
