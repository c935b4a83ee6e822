"""Docker API routes we do not serve yet: they answer 501 with the feature's name, not 404.

A client then learns that pydockerd knows the route and lacks the feature, rather than that it asked
for something that does not exist. Each later issue turns a line here into real routes.
"""

import re

PREFIX = re.compile(r"^/v[0-9]+\.[0-9]+(?=/)")

_ROUTES = [  # (method or "*", path pattern, what is missing)
    ("*", r"/build(/.*)?", "building images"),
    ("POST", r"/commit", "committing containers"),
    ("*", r"/networks(/.*)?", "networks"),
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


def missing_feature(method: str, path: str) -> str | None:
    """The feature a known but unserved Docker route belongs to, or None for an unknown route."""
    bare = PREFIX.sub("", path)
    for want, pattern, what in _COMPILED:
        if (want == "*" or want == method) and pattern.match(bare):
            return what
    return None
