"""Networks as the API shows them: inspect and list objects, and Docker's list and prune filters."""

import time
from typing import Any

from daemon.containers.store import Container
from daemon.errors import InvalidParameter
from daemon.labels import labels_match
from daemon.networks.store import Network
from daemon.timefmt import parse_since_until, parse_state_time

LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
PRUNE_FILTERS = ("label", "label!", "until")


def network_view(n: Network, containers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {**n.record, "Containers": containers}


def container_entry(c: Container, ep: dict[str, Any]) -> dict[str, Any]:
    ip4 = f"{ep['IPAddress']}/{ep['IPPrefixLen']}" if ep.get("IPAddress") else ""
    ip6 = f"{ep['GlobalIPv6Address']}/{ep['GlobalIPv6PrefixLen']}" if ep.get("GlobalIPv6Address") else ""
    return {
        "Name": c.name,
        "EndpointID": ep.get("EndpointID", ""),
        "MacAddress": ep.get("MacAddress", ""),
        "IPv4Address": ip4,
        "IPv6Address": ip6,
    }


def check_filters(filters: dict[str, list[str]]) -> None:
    for key, values in filters.items():
        if key not in LIST_FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
        if key == "type":
            for v in values:
                if v not in ("custom", "builtin"):
                    raise InvalidParameter(f"invalid filter: 'type'='{v}'")
        if key == "dangling":
            for v in values:
                if v.lower() not in ("true", "false", "1", "0"):
                    raise InvalidParameter(f"invalid filter 'dangling={v}'")


def matches(n: Network, filters: dict[str, list[str]], in_use: bool) -> bool:
    def any_of(key: str, test: Any) -> bool:
        values = filters.get(key)
        return not values or any(test(v) for v in values)

    return (
        any_of("driver", lambda v: n.driver == v)
        and any_of("id", lambda v: n.id.startswith(v))
        and any_of("name", lambda v: v in n.name)
        and any_of("scope", lambda v: v == "local")
        and any_of("type", lambda v: (v == "custom") == n.user_defined)
        and any_of("dangling", lambda v: (v.lower() in ("true", "1")) == (n.user_defined and not in_use))
        and labels_match(n.labels, filters.get("label") or [])
    )


def check_prune_filters(filters: dict[str, list[str]]) -> None:
    for key in filters:
        if key not in PRUNE_FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
    for value in filters.get("until") or []:
        try:
            parse_since_until(value, time.time_ns())
        except ValueError:
            raise InvalidParameter(f"invalid filter 'until={value}'") from None


def prune_matches(n: Network, filters: dict[str, list[str]]) -> bool:
    if filters.get("label") and not labels_match(n.labels, filters["label"]):
        return False
    if any(labels_match(n.labels, [v]) for v in filters.get("label!") or []):
        return False
    for value in filters.get("until") or []:
        if parse_state_time(n.record["Created"]) >= parse_since_until(value, time.time_ns()):
            return False
    return True
