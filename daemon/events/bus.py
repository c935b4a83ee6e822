"""The daemon's event bus: publish once, stream to every subscriber, keep a bounded history for `since`."""

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

Event = dict[str, Any]

HISTORY = 1024


def matches(event: Event, filters: dict[str, list[str]]) -> bool:
    """Docker's event filters: values of one key are ORed, keys are ANDed."""
    actor = event["Actor"]
    attrs = actor.get("Attributes", {})
    for key, wanted in filters.items():
        if not wanted:
            continue
        if key == "type":
            ok = event["Type"] in wanted
        elif key in ("event", "action"):
            ok = event["Action"] in wanted or event["Action"].split(":")[0] in wanted
        elif key in ("container", "image", "volume", "network"):
            ok = event["Type"] == key and any(
                w == actor["ID"] or actor["ID"].startswith(w) or w == attrs.get("name") for w in wanted
            )
            if key == "image" and not ok:
                ok = attrs.get("image") in wanted
        elif key == "label":
            ok = all(_label_matches(attrs, w) for w in wanted)
        elif key == "scope":
            ok = event.get("scope", "local") in wanted
        else:
            ok = True
        if not ok:
            return False
    return True


def _label_matches(attrs: dict[str, str], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    if not sep:
        return key in attrs
    return attrs.get(key) == value


class EventBus:
    def __init__(self) -> None:
        self._history: deque[Event] = deque(maxlen=HISTORY)
        self._subscribers: set[asyncio.Queue[Event]] = set()

    @property
    def listener_count(self) -> int:
        """Subscribers streaming now (`docker info`'s NEventsListener)."""
        return len(self._subscribers)

    def publish(
        self, type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None
    ) -> Event:
        now_ns = time.time_ns()
        attributes = dict(attributes or {})
        event: Event = {
            "Type": type_,
            "Action": action,
            "Actor": {"ID": actor_id, "Attributes": attributes},
            "scope": "local",
            "time": now_ns // 1_000_000_000,
            "timeNano": now_ns,
        }
        if type_ == "container":  # the old top-level fields, still read by some clients
            event["status"] = action
            event["id"] = actor_id
            if "image" in attributes:
                event["from"] = attributes["image"]
        self._history.append(event)
        for queue in self._subscribers:
            queue.put_nowait(event)
        return event

    async def subscribe(
        self, since_ns: int | None, until_ns: int | None, filters: dict[str, list[str]]
    ) -> AsyncIterator[Event]:
        """Past events from `since`, then live ones until `until` (forever when None)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            # The queue is subscribed before the snapshot is taken, with no await between: each
            # event is in exactly one of them, even those published while we replay.
            snapshot = list(self._history) if since_ns is not None else []
            for event in snapshot:
                if since_ns is not None and event["timeNano"] < since_ns:
                    continue
                if until_ns is not None and event["timeNano"] > until_ns:
                    return
                if matches(event, filters):
                    yield event
            while True:
                timeout = None
                if until_ns is not None:
                    timeout = (until_ns - time.time_ns()) / 1e9
                    if timeout <= 0:
                        return
                try:
                    event = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    return
                if until_ns is not None and event["timeNano"] > until_ns:
                    return
                if matches(event, filters):
                    yield event
        finally:
            self._subscribers.discard(queue)
