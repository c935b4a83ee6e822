"""Content digests as Docker spells them: "sha256:<64 hex>", chain IDs, short IDs."""

import hashlib
import re

SHA256_HEX = re.compile(r"^[a-f0-9]{64}$")
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hex_of(digest: str) -> str:
    """The hex part of "sha256:<hex>" (a bare hex string is returned as is)."""
    return digest.split(":", 1)[1] if ":" in digest else digest


def is_digest(value: str) -> bool:
    return bool(DIGEST.match(value))


def short_id(digest: str) -> str:
    """Docker's stringid.TruncateID: drop the algorithm, keep 12 characters."""
    return hex_of(digest)[:12]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append(sha256_digest(f"{out[-1]} {diff_id}".encode()))
    return out
