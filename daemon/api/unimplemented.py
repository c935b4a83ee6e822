"""Docker API routes we do not serve yet: they answer 501 with the feature's name, not 404.

A client then learns that pydockerd knows the route and lacks the feature, rather than that it asked
for something that does not exist. Each later issue turns a line here into real routes.
"""

import re

PREFIX = re.compile(r"^/v[0-9]+\.[0-9]+(?=/)")

_ROUTES = [  # (method or "*", path pattern, what is missing)
    ("*", r"/build(/.*)?", "building images"),
    ("POST", r"/commit", "committing containers"),
    ("*", r"/volumes(/.*)?", "volumes"),
    ("GET", r"/images/get", "saving images"),
    ("GET", r"/images/.+/get", "saving images"),
    ("GET", r"/images/.+/history", "image history"),
    ("POST", r"/images/.+/push", "pushing images"),
    ("GET", r"/images/search", "searching registries"),
    ("POST", r"/images/prune", "pruning images"),
    ("GET", r"/distribution/.+/json", "registry lookups"),
    ("POST", r"/auth", "registry logins"),
    ("GET", r"/containers/[^/]+/export", "exporting containers"),
    ("GET", r"/containers/[^/]+/changes", "container file system changes"),
    ("*", r"/containers/[^/]+/archive", "copying files to and from containers"),
    ("GET", r"/containers/[^/]+/stats", "container stats"),
    ("GET", r"/system/df", "disk usage"),
    ("*", r"/(swarm|nodes|services|tasks|secrets|configs)(/.*)?", "swarm mode"),
    ("*", r"/plugins(/.*)?", "plugins"),
    ("POST", r"/session", "build sessions"),
]
_COMPILED = [(method, re.compile(f"^{pattern}$"), what) for method, pattern, what in _ROUTES]


# Looking up one object of a kind we do not have yet finds nothing (404), as it would in a daemon with no
# such objects: `docker inspect NAME` tries each kind in turn and stops at the first other error.
_LOOKUPS = [
    (re.compile(r"^/volumes/([^/]+)$"), "get {}: no such volume"),
    (re.compile(r"^/plugins/([^/]+)/json$"), "plugin {} not found"),
]


def missing_object(method: str, path: str) -> str | None:
    """Docker's not-found message for a GET of one object of a kind we do not serve yet."""
    if method != "GET":
        return None
    bare = PREFIX.sub("", path)
    for pattern, message in _LOOKUPS:
        match = pattern.match(bare)
        if match:
            return message.format(match.group(1))
    return None


def missing_feature(method: str, path: str) -> str | None:
    """The feature a known but unserved Docker route belongs to, or None for an unknown route."""
    bare = PREFIX.sub("", path)
    for want, pattern, what in _COMPILED:
        if (want == "*" or want == method) and pattern.match(bare):
            return what
    return None
