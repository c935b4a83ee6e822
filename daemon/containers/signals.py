"""Signal names and numbers as Docker reads them (moby/sys/signal ParseSignal and its Linux SignalMap)."""

import re
import signal as _signal

SIGRTMIN, SIGRTMAX = 34, 64  # Docker's fixed values (glibc reserves 32 and 33 for itself)
MAX_SIGNAL = 64

_NAMED = (
    "ABRT",
    "ALRM",
    "BUS",
    "CHLD",
    "CLD",
    "CONT",
    "FPE",
    "HUP",
    "ILL",
    "INT",
    "IO",
    "IOT",
    "KILL",
    "PIPE",
    "POLL",
    "PROF",
    "PWR",
    "QUIT",
    "SEGV",
    "STKFLT",
    "STOP",
    "SYS",
    "TERM",
    "TRAP",
    "TSTP",
    "TTIN",
    "TTOU",
    "URG",
    "USR1",
    "USR2",
    "VTALRM",
    "WINCH",
    "XCPU",
    "XFSZ",
)


def _signal_map() -> dict[str, int]:
    names = {name: int(getattr(_signal, "SIG" + name)) for name in _NAMED}
    names["RTMIN"], names["RTMAX"] = SIGRTMIN, SIGRTMAX
    for i in range(1, 16):
        names[f"RTMIN+{i}"] = SIGRTMIN + i
        names[f"RTMAX-{i}"] = SIGRTMAX - i
    return names


SIGNALS = _signal_map()


def parse_signal(raw: str) -> int:
    """ "KILL", "sigterm", "RTMIN+3", "9" -> the number; ValueError with Docker's words otherwise.

    Docker takes any non-zero number here and fails later when it sends it; we refuse numbers that
    are not signals (outside 1..64) at once, with the same words.
    """
    if re.fullmatch(r"[+-]?[0-9]+", raw):  # what Go's strconv.Atoi takes
        number = int(raw)
        if 0 < number <= MAX_SIGNAL:
            return number
        raise ValueError(f"invalid signal: {raw}")
    name = raw.upper().removeprefix("SIG")
    if name in SIGNALS:
        return SIGNALS[name]
    raise ValueError(f"invalid signal: {raw}")
