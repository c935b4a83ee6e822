"""The Docker API versions this daemon speaks: one place for the API layer and the system service."""

API_VERSION = "1.47"
MIN_API_VERSION = "1.24"
_INT64_MAX = 2**63 - 1


def parse_version(text: str) -> tuple[int, ...]:
    """Parse "1.47" into (1, 47), each part read as Go's strconv.Atoi reads it for Docker: leading
    zeros are ignored and a part past int64 saturates (Python's int() of 5,000 digits would raise)."""
    parts = (part.lstrip("0") or "0" for part in text.split("."))
    return tuple(min(int(part), _INT64_MAX) if len(part) <= 19 else _INT64_MAX for part in parts)
