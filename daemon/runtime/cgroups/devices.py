"""Device rules, shared by both cgroup versions.

A rule is what one write to the v1 files devices.allow / devices.deny says ("c 1:3 rwm"). v1 applies
rules one by one; DevicePolicy replays the same writes the way the v1 devices controller does, so
cgroup v2, which needs a whole eBPF program instead (devicefilter.py), ends up with the same policy:

  - "a" (any type, any numbers) resets: allowing it allows every device, denying it denies every
    device, and both forget the exceptions made so far;
  - a rule that disagrees with the default adds an exception (its access letters merge into an
    exception with the same type and numbers); a rule that agrees with the default takes its letters
    away from the exception with exactly its type and numbers (a wildcard does not cut into a
    narrower exception);
  - an access is allowed, when the default denies, only if one exception covers all of it; when the
    default allows, only if no exception shares any letter with it (devcgroup_legacy_check_permission).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# access bits and device types as the kernel numbers them (DEVCG_ACC_*, DEVCG_DEV_*)
MKNOD, READ, WRITE = 1, 2, 4
ALL_ACCESS = MKNOD | READ | WRITE
BLOCK, CHAR = 1, 2
TYPES = {"b": BLOCK, "c": CHAR}
_LETTERS = (("r", READ), ("w", WRITE), ("m", MKNOD))  # the order v1 prints them in
_BITS = dict(_LETTERS)
# the kernel's dev_t: 12 bits of major, 20 of minor; a larger number can never match a device
MAX_MAJOR, MAX_MINOR = (1 << 12) - 1, (1 << 20) - 1


class InvalidDeviceRule(ValueError):
    """A rule that is not "<a|b|c> <major|*>:<minor|*> <r|w|m...>"; str() says which and why."""


@dataclass(frozen=True)
class DeviceRule:
    allow: bool  # written to devices.allow (True) or devices.deny (False)
    type: str  # "a" (any: the reset rule), "b" or "c"
    major: int | None = None  # None: any
    minor: int | None = None
    access: int = ALL_ACCESS  # MKNOD | READ | WRITE bits

    def __post_init__(self) -> None:
        if (
            self.type not in ("a", "b", "c")
            or not 0 < self.access <= ALL_ACCESS
            or not (self.major is None or 0 <= self.major <= MAX_MAJOR)
            or not (self.minor is None or 0 <= self.minor <= MAX_MINOR)
        ):
            raise InvalidDeviceRule(f"invalid device rule {self!r}")

    @classmethod
    def parse(cls, text: str, allow: bool = True) -> DeviceRule:
        """v1 syntax: "c 1:3 rwm", "b *:* m", or "a".

        Like v1 (and runc), any rule of type "a" is the reset rule, whatever numbers it names.
        """
        fields = text.split()
        if fields == ["a"]:
            return cls(allow, "a")
        if len(fields) != 3 or fields[0] not in ("a", "b", "c"):
            raise InvalidDeviceRule(f"invalid device rule {text!r}: want '<a|b|c> <major>:<minor> <rwm>'")
        kind, numbers, letters = fields
        major, sep, minor = numbers.partition(":")
        if not sep:
            raise InvalidDeviceRule(f"invalid device rule {text!r}: want '<major>:<minor>'")
        if not 1 <= len(letters) <= 3 or any(ch not in _BITS for ch in letters):
            raise InvalidDeviceRule(f"invalid device rule {text!r}: access must be 1 to 3 letters of 'rwm'")
        access = 0
        for ch in letters:
            access |= _BITS[ch]
        rule = cls(allow, kind, _number(major, MAX_MAJOR, text), _number(minor, MAX_MINOR, text), access)
        return cls(allow, "a") if rule.is_reset else rule

    @property
    def is_reset(self) -> bool:
        return self.type == "a"

    def v1(self) -> str:
        """The line that makes this rule in devices.allow / devices.deny."""
        if self.is_reset:
            return "a"
        numbers = f"{_show(self.major)}:{_show(self.minor)}"
        return f"{self.type} {numbers} {''.join(ch for ch, bit in _LETTERS if self.access & bit)}"

    def key(self) -> tuple[str, int | None, int | None]:
        return self.type, self.major, self.minor


def _number(text: str, limit: int, rule: str) -> int | None:
    if text == "*":
        return None
    if not text.isdigit() or not text.isascii() or int(text) > limit:
        raise InvalidDeviceRule(f"invalid device rule {rule!r}: {text!r} is not '*' or a number to {limit}")
    return int(text)


def _show(number: int | None) -> str:
    return "*" if number is None else str(number)


@dataclass(frozen=True)
class DevicePolicy:
    """Where a sequence of v1 writes leaves a cgroup: a default and its exceptions, in v1's order."""

    default_allow: bool
    exceptions: tuple[DeviceRule, ...] = ()  # each with allow == not default_allow

    @classmethod
    def from_rules(cls, rules: Iterable[DeviceRule]) -> DevicePolicy:
        """Replay rules on a new cgroup, whose parent allows everything (a new cgroup starts
        with its parent's policy: we only create ours below a cgroup that allows all)."""
        default_allow = True
        exceptions: dict[tuple[str, int | None, int | None], int] = {}  # keeps insertion order
        for rule in rules:
            if rule.is_reset:
                default_allow = rule.allow
                exceptions.clear()
            elif rule.allow != default_allow:  # an exception to the default: add its letters
                exceptions[rule.key()] = exceptions.get(rule.key(), 0) | rule.access
            elif rule.key() in exceptions:  # agrees with the default: take its letters away
                left = exceptions[rule.key()] & ~rule.access
                if left:
                    exceptions[rule.key()] = left
                else:
                    del exceptions[rule.key()]
        return cls(
            default_allow,
            tuple(DeviceRule(not default_allow, t, ma, mi, acc) for (t, ma, mi), acc in exceptions.items()),
        )

    @property
    def allows_everything(self) -> bool:
        return self.default_allow and not self.exceptions

    def v1_list(self) -> list[str]:
        """What v1 shows in devices.list for this policy."""
        if self.default_allow:
            return ["a *:* rwm"]
        return [rule.v1() for rule in self.exceptions]


def parse_rules(lines: Iterable[str], allow: bool = True) -> tuple[DeviceRule, ...]:
    return tuple(DeviceRule.parse(line, allow) for line in lines)


DENY_ALL = DeviceRule(False, "a")
ALLOW_ALL = DeviceRule(True, "a")

# what a container may use (runc's defaults, which Docker uses): mknod of any device node, and
# reading and writing only these: null, zero, full, random, urandom, tty, console, ptmx, its pts, tun
DEFAULT_DEVICE_RULES = (DENY_ALL, *parse_rules((
    "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
)))  # fmt: skip


def container_device_rules(privileged: bool, extra: Iterable[DeviceRule] = ()) -> tuple[DeviceRule, ...]:
    """The rules for a container: every device when privileged, else Docker's defaults; extra rules
    (a later --device or --device-cgroup-rule) are applied after them, as v1 would."""
    return (*((ALLOW_ALL,) if privileged else DEFAULT_DEVICE_RULES), *extra)
