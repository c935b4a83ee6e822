"""Image references, platforms, timestamps and list filters: the pure helpers of the image store."""

import pytest

from daemon.errors import InvalidParameter
from daemon.files.digest import chain_ids, sha256_digest, short_id
from daemon.images import filters
from daemon.images.platforms import host_platform, parse_platform
from daemon.images.reference import familiar_with_tag, parse, parse_repo_tag
from daemon.labels import labels_match

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "name", "tag", "familiar"),
    [
        ("busybox", "docker.io/library/busybox", None, "busybox"),
        ("busybox:1.36", "docker.io/library/busybox", "1.36", "busybox:1.36"),
        ("library/busybox:1", "docker.io/library/busybox", "1", "busybox:1"),
        ("docker.io/library/busybox", "docker.io/library/busybox", None, "busybox"),
        ("index.docker.io/user/app:v2", "docker.io/user/app", "v2", "user/app:v2"),
        ("user/app", "docker.io/user/app", None, "user/app"),
        ("127.0.0.1:5055/smoke/built:1", "127.0.0.1:5055/smoke/built", "1", "127.0.0.1:5055/smoke/built:1"),
        ("localhost/app", "localhost/app", None, "localhost/app"),
        ("localhost:5000/a/b/c", "localhost:5000/a/b/c", None, "localhost:5000/a/b/c"),
        ("ghcr.io/org/tool:1.0-rc.1", "ghcr.io/org/tool", "1.0-rc.1", "ghcr.io/org/tool:1.0-rc.1"),
        ("my-app__x.y", "docker.io/library/my-app__x.y", None, "my-app__x.y"),
    ],
)
def test_parse_and_familiarize(ref: str, name: str, tag: str | None, familiar: str) -> None:
    r = parse(ref)
    assert (r.name, r.tag, r.familiar()) == (name, tag, familiar)


def test_default_tag_and_digests() -> None:
    assert parse("busybox").with_default_tag().familiar() == "busybox:latest"
    r = parse(f"busybox@{DIGEST}")
    assert (r.tag, r.digest) == (None, DIGEST)
    assert r.with_default_tag() == r  # a digest needs no tag
    assert r.store_key() == f"busybox@{DIGEST}"
    assert parse("busybox:1@" + DIGEST).store_key() == f"busybox@{DIGEST}"
    assert familiar_with_tag("docker.io/library/busybox") == "busybox:latest"
    assert familiar_with_tag("NOT VALID") == "NOT VALID"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("", "invalid reference format"),
        ("Busybox", "repository name (library/Busybox) must be lowercase"),
        ("busybox:", "invalid reference format"),
        ("bad name", "invalid reference format"),
        ("a//b", "invalid reference format"),
        ("busybox:" + "x" * 129, "invalid reference format"),
        ("-busybox", "invalid reference format"),
        ("ab" * 32, "cannot specify 64-byte hexadecimal strings"),
        ("busybox@sha256:abc", "invalid reference format"),
    ],
)
def test_invalid_references(ref: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(ref)


def test_repo_and_tag_parameters() -> None:
    assert parse_repo_tag("busybox", None).familiar() == "busybox:latest"
    assert parse_repo_tag("busybox:old", "new").familiar() == "busybox:new"
    assert parse_repo_tag("127.0.0.1:5055/smoke/built", "1").familiar() == "127.0.0.1:5055/smoke/built:1"
    with pytest.raises(InvalidParameter, match="digest"):
        parse_repo_tag(f"busybox@{DIGEST}", None)
    with pytest.raises(InvalidParameter, match="invalid tag format"):
        parse_repo_tag("busybox", "bad tag")


def test_digests_and_chain_ids() -> None:
    a, b = sha256_digest(b"a"), sha256_digest(b"b")
    assert chain_ids([]) == []
    assert chain_ids([a]) == [a]
    assert chain_ids([a, b]) == [a, sha256_digest(f"{a} {b}".encode())]
    assert short_id(DIGEST) == "ab" * 6


def test_platforms() -> None:
    assert parse_platform(None) == host_platform()
    assert parse_platform("linux/x86_64").architecture == "amd64"
    assert parse_platform("linux/arm/v6").variant == "v6"
    with pytest.raises(InvalidParameter, match="operating system is not supported: windows"):
        parse_platform("windows/amd64")


def test_list_filter_helpers() -> None:
    match = filters.glob_matcher("busy*")
    assert match("busybox") and match("busybox:latest") and not match("library/busybox")
    assert filters.glob_matcher("*/*:[0-9]")("smoke/built:1")
    assert not filters.glob_matcher("*")("a/b")  # like Go's path.Match, * stops at "/"
    assert labels_match({"a": "1", "b": "2"}, ["a", "b=2"])
    assert not labels_match({"a": "1"}, ["a=2"])
    assert filters.dangling({"dangling": ["true"]}) is True
    assert filters.dangling({}) is None
    with pytest.raises(InvalidParameter, match="invalid filter 'dangling=maybe'"):
        filters.dangling({"dangling": ["maybe"]})
    with pytest.raises(InvalidParameter, match="invalid filter 'colour'"):
        filters.validate({"colour": ["red"]})
    now = 2_000_000_000 * 10**9
    assert filters.timestamp_ns("1h30m", now) == now - 5400 * 10**9
    assert filters.timestamp_ns("1700000000", now) == 1_700_000_000 * 10**9
    assert filters.timestamp_ns("2023-11-14Z", now) == 1_699_920_000 * 10**9
    with pytest.raises(InvalidParameter, match="failed to parse value as time or duration: 'soon'"):
        filters.timestamp_ns("soon", now)
