"""Names for containers created without one, in Docker's adjective_name style (our own word lists)."""

import random
import re

NAME_PATTERN = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

ADJECTIVES = [
    "agile",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "cosy",
    "crisp",
    "daring",
    "eager",
    "fair",
    "fond",
    "gentle",
    "glad",
    "happy",
    "hardy",
    "humble",
    "jolly",
    "keen",
    "kind",
    "lively",
    "loyal",
    "lucid",
    "merry",
    "mellow",
    "nimble",
    "noble",
    "patient",
    "plucky",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "serene",
    "sharp",
    "shy",
    "steady",
    "sturdy",
    "sunny",
    "swift",
    "tender",
    "tidy",
    "vivid",
    "warm",
    "wise",
    "witty",
    "zany",
    "zen",
]
NOUNS = [
    "aurora",
    "badger",
    "beacon",
    "brook",
    "canyon",
    "cedar",
    "comet",
    "coral",
    "delta",
    "falcon",
    "fern",
    "fjord",
    "glacier",
    "harbor",
    "heron",
    "island",
    "juniper",
    "kestrel",
    "lagoon",
    "lantern",
    "maple",
    "meadow",
    "meteor",
    "nebula",
    "orchid",
    "otter",
    "pebble",
    "pine",
    "prairie",
    "quartz",
    "raven",
    "reef",
    "ridge",
    "river",
    "saffron",
    "sequoia",
    "sparrow",
    "summit",
    "thistle",
    "tundra",
    "valley",
    "walnut",
    "willow",
    "zephyr",
]


def random_name(taken: set[str]) -> str:
    for _ in range(100):
        name = f"{random.choice(ADJECTIVES)}_{random.choice(NOUNS)}"
        if name not in taken:
            return name
    while True:
        name = f"{random.choice(ADJECTIVES)}_{random.choice(NOUNS)}{random.randint(0, 99999)}"
        if name not in taken:
            return name


def valid_name(name: str) -> bool:
    return bool(NAME_PATTERN.match(name))
