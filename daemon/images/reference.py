"""Docker image references: parse, normalize ("busybox" -> docker.io/library/busybox:latest), familiarize.

Follows the grammar of github.com/distribution/reference, including its error words, because clients
show them to users as they are.
"""

import re
from dataclasses import dataclass

from daemon.errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

REFERENCE_RE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
TAG_RE = re.compile(rf"^{_TAG}$")
ANCHORED_ID_RE = re.compile(r"^[a-f0-9]{64}$")
SHA256_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    """A normalized reference. `name` is fully qualified: "docker.io/library/busybox"."""

    name: str
    tag: str | None = None
    digest: str | None = None

    @property
    def domain(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def path(self) -> str:
        return self.name.split("/", 1)[1]

    @property
    def familiar_name(self) -> str:
        """ "docker.io/library/busybox" -> "busybox"; other registries keep their domain."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX) :]:
            return path[len(OFFICIAL_PREFIX) :]
        return path

    def familiar(self) -> str:
        """The familiar string, as Docker prints it: "busybox:latest", "host:5000/a/b@sha256:..."."""
        out = self.familiar_name
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + self.digest
        return out

    def with_default_tag(self) -> "Reference":
        """Docker's TagNameOnly: add "latest" when there is neither tag nor digest."""
        if self.tag is None and self.digest is None:
            return Reference(self.name, DEFAULT_TAG, None)
        return self

    def store_key(self) -> str:
        """How the reference store names this reference: by digest when there is one, else by tag."""
        if self.digest is not None:
            return f"{self.familiar_name}@{self.digest}"
        return f"{self.familiar_name}:{self.tag or DEFAULT_TAG}"


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i] if i >= 0 else ""
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[i + 1 :]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse(ref: str) -> Reference:
    """ParseNormalizedNamed: accepts "busybox", "busybox:1.36", "host:5000/a/b:1", "name@sha256:...".

    No default tag is added (see Reference.with_default_tag). Raises InvalidParameter.
    """
    if ANCHORED_ID_RE.match(ref):
        raise InvalidParameter(f"invalid repository name ({ref}), cannot specify 64-byte hexadecimal strings")
    if not ref:
        raise InvalidParameter("invalid reference format: repository name must have at least one component")
    domain, remainder = _split_domain(ref)
    remote = remainder.split(":", 1)[0].split("@", 1)[0]
    if remote.lower() != remote:
        raise InvalidParameter(f"invalid reference format: repository name ({remote}) must be lowercase")
    full = f"{domain}/{remainder}"
    m = REFERENCE_RE.match(full)
    if m is None:
        raise InvalidParameter("invalid reference format")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_TOTAL_MAX:
        raise InvalidParameter(
            f"invalid reference format: repository name must not be more than {NAME_TOTAL_MAX} characters"
        )
    if digest is not None and not SHA256_DIGEST_RE.match(digest):
        raise InvalidParameter("invalid reference format: unsupported digest algorithm or length")
    return Reference(name, tag, digest)


def parse_repo_tag(repo: str, tag: str | None) -> Reference:
    """The `repo` and `tag` query parameters of tag/import/commit: a reference to tag an image with."""
    ref = parse(repo)
    if ref.digest is not None:
        raise InvalidParameter("refusing to create a tag with a digest reference")
    if tag:
        if not TAG_RE.match(tag):
            raise InvalidParameter(f"invalid tag format: {tag}")
        ref = Reference(ref.name, tag, None)
    return ref.with_default_tag()


def familiar_with_tag(ref: str) -> str:
    """For "No such image: ..." messages: the familiar form with the default tag, or `ref` itself."""
    try:
        return parse(ref).with_default_tag().familiar()
    except InvalidParameter:
        return ref
