"""Image commands: images, pull, import, load, tag, rmi."""

from __future__ import annotations

import argparse
import io
import sys
import time
from typing import IO, Any

from . import format as fmt
from . import opts
from .cmd_query import filters_param
from .common import CLIError, display_messages, path
from .http import APIError, Client

IMAGES_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_HEADERS = {
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "ID": "IMAGE ID",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Containers": "CONTAINERS",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
}


def _by_repository(refs: list[str], want: str) -> dict[str, list[str]]:
    """Group `name:tag` (want="tag") or `name@digest` (want="digest") references by familiar name."""
    grouped: dict[str, list[str]] = {}
    for ref in refs:
        if ref.startswith("<none>"):
            continue
        name, tag, digest = opts.split_reference(ref)
        value = tag if want == "tag" else digest
        if value:
            grouped.setdefault(opts.familiar_name(opts.normalize_name(name)), []).append(value)
    return grouped


def image_rows(img: dict[str, Any], trunc: bool = True, now: float | None = None) -> list[dict[str, str]]:
    """One row per repository:tag (docker's image formatter); digest-only and untagged images
    get `<none>` columns."""
    created = img.get("Created") or 0
    size = img.get("Size") or 0
    shared = img.get("SharedSize", -1)
    base = {
        "ID": fmt.truncate_id(img.get("Id") or "") if trunc else img.get("Id") or "",
        "CreatedSince": fmt.since(created, now),
        "CreatedAt": fmt.go_time(created),
        "Size": fmt.human_size(size),
        "Containers": "N/A" if img.get("Containers", -1) == -1 else str(img.get("Containers")),
        "SharedSize": "N/A" if shared == -1 else fmt.human_size(shared),
        "UniqueSize": "N/A" if shared == -1 else fmt.human_size(size - shared),
    }
    tags = _by_repository(img.get("RepoTags") or [], "tag")
    digests = _by_repository(img.get("RepoDigests") or [], "digest")
    rows = []
    for repo, repo_tags in tags.items():
        digests.pop(repo, None)  # digests of a tagged repository get no row of their own
        rows += [{**base, "Repository": repo, "Tag": tag, "Digest": "<none>"} for tag in repo_tags]
    for repo, repo_digests in digests.items():
        rows.append({**base, "Repository": repo, "Tag": "<none>", "Digest": repo_digests[0]})
    return rows or [{**base, "Repository": "<none>", "Tag": "<none>", "Digest": "<none>"}]


def cmd_images(client: Client, a: argparse.Namespace) -> int:
    filters = list(a.filter)
    if a.reference:
        filters.append(f"reference={a.reference}")
    images = client.get("/images/json", {"all": a.all, "filters": filters_param(filters)})
    now = time.time()
    rows = [row for img in images for row in image_rows(img, not a.no_trunc, now)]
    form = "{{.ID}}" if a.quiet else a.format or IMAGES_TABLE
    sys.stdout.write(fmt.render(form, rows, IMAGES_HEADERS))
    return 0


def cmd_pull(client: Client, a: argparse.Namespace) -> int:
    with client.request("POST", "/images/create", opts.pull_query(a.image)) as resp:
        display_messages(resp.iter_json(), io.StringIO() if a.quiet else sys.stdout)
    name, tag, digest = opts.split_reference(a.image)
    print(opts.normalize_name(name) + (f"@{digest}" if digest else f":{tag or 'latest'}"))
    return 0


def _open_source(name: str) -> IO[bytes]:
    if name == "-":
        return sys.stdin.buffer
    try:
        return open(name, "rb")
    except OSError as e:
        raise CLIError(f"open {name}: {e.strerror.lower() if e.strerror else e}") from e


def cmd_import(client: Client, a: argparse.Namespace) -> int:
    query: dict[str, Any] = {"message": a.message or None, "changes": a.change}
    if a.reference:
        if "@" in a.reference:
            raise CLIError("refusing to create a tag with a digest reference")
        name, tag, _ = opts.split_reference(a.reference)
        query.update(repo=name, tag=tag or None)
    body: IO[bytes] | None = None
    if a.source.startswith(("http://", "https://")):
        query["fromSrc"] = a.source
    else:
        query["fromSrc"] = "-"
        body = _open_source(a.source)
    try:
        with client.request(
            "POST", "/images/create", query, body=body, headers={"Content-Type": "application/x-tar"}
        ) as resp:
            display_messages(resp.iter_json(), sys.stdout)
    finally:
        if body is not None and body is not sys.stdin.buffer:
            body.close()
    return 0


def cmd_load(client: Client, a: argparse.Namespace) -> int:
    if not a.input and sys.stdin.isatty():
        raise CLIError("requested load from stdin, but stdin is empty")
    source = _open_source(a.input or "-")
    quiet = a.quiet or not sys.stdout.isatty()  # docker hides progress when not on a terminal
    try:
        headers = {"Content-Type": "application/x-tar"}
        with client.request("POST", "/images/load", {"quiet": quiet}, body=source, headers=headers) as resp:
            if resp.is_json:
                display_messages(resp.iter_json(), sys.stdout)
            else:
                while chunk := resp.read1():
                    sys.stdout.buffer.write(chunk)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    return 0


def cmd_tag(client: Client, a: argparse.Namespace) -> int:
    if "@" in a.target:
        raise CLIError("refusing to create a tag with a digest reference")
    name, tag, _ = opts.split_reference(a.target)
    client.post(path("/images/{}/tag", a.source), {"repo": name, "tag": tag or "latest"})
    return 0


def cmd_rmi(client: Client, a: argparse.Namespace) -> int:
    failed = False
    for image in a.images:
        try:
            deleted = client.delete(path("/images/{}", image), {"force": a.force, "noprune": a.no_prune})
        except APIError as e:
            print(e, file=sys.stderr)
            failed = True
            continue
        for item in deleted or []:
            if item.get("Untagged"):
                print(f"Untagged: {item['Untagged']}")
            if item.get("Deleted"):
                print(f"Deleted: {item['Deleted']}")
    return 1 if failed else 0
