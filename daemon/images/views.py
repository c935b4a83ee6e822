"""The JSON shapes of GET /images/json and GET /images/{name}/json."""

from typing import Any

from daemon.images.store import Layer, StoredImage, diff_ids_of
from daemon.timefmt import ZERO_TIME


def summary(image: StoredImage, repo_tags: list[str], repo_digests: list[str]) -> dict[str, Any]:
    config = image.config.get("config") or {}
    return {
        "Containers": -1,
        "Created": image.created_ns // 1_000_000_000,
        "Id": image.id,
        "Labels": config.get("Labels") or {},
        "ParentId": image.parent,
        "RepoDigests": repo_digests,
        "RepoTags": repo_tags,
        "SharedSize": -1,
        "Size": image.size,
    }


def graph_driver(layers: list[Layer]) -> dict[str, Any]:
    """overlay2's view of an image: the top layer is the "upper" one, the rest are lower, top first."""
    if not layers:
        return {"Data": None, "Name": "overlay2"}
    top = layers[-1]
    data = {
        "MergedDir": str(top.path / "merged"),
        "UpperDir": str(top.diff_path),
        "WorkDir": str(top.path / "work"),
    }
    if len(layers) > 1:
        data["LowerDir"] = ":".join(str(layer.diff_path) for layer in reversed(layers[:-1]))
    return {"Data": data, "Name": "overlay2"}


def inspect(
    image: StoredImage, repo_tags: list[str], repo_digests: list[str], layers: list[Layer]
) -> dict[str, Any]:
    c = image.config
    out: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": repo_tags,
        "RepoDigests": repo_digests,
        "Parent": image.parent,
        "Comment": c.get("comment") or "",
        "Created": c.get("created") or ZERO_TIME,
        "DockerVersion": c.get("docker_version") or "",
        "Author": c.get("author") or "",
        "Config": c.get("config"),
        "Architecture": c.get("architecture") or "",
        "Os": c.get("os") or "",
        "Size": image.size,
        "GraphDriver": graph_driver(layers),
        "RootFS": {"Type": "layers", "Layers": diff_ids_of(c)},
        "Metadata": {"LastTagTime": image.last_tag_time or ZERO_TIME},
    }
    if c.get("variant"):
        out["Variant"] = c["variant"]
    if c.get("os.version"):
        out["OsVersion"] = c["os.version"]
    return out
