"""Docker's words for a create body of the wrong shape: Go's encoding/json errors, as dockerd wraps them.

dockerd decodes the body into container.CreateRequest (Config embedded, HostConfig, NetworkingConfig) and
answers a type error with "invalid JSON: json: cannot unmarshal <kind> into Go struct field
<Struct>.<path> of type <type>", where Struct is the innermost Go struct and path the field path from
the root (moby runconfig/config.go loadJSON, Go's UnmarshalTypeError).
"""

from typing import Any

from daemon.errors import InvalidParameter

INT64 = (-(2**63), 2**63 - 1)
UINT64 = (0, 2**64 - 1)


def kind_of(value: Any, *, for_int: bool = False) -> str:
    """Go's name for a JSON value; a number that does not fit an integer field is shown with its text."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value!r}" if for_int else "number"  # Go shows the literal; ours is close
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def type_error(value: Any, struct: str, path: str, go_type: str) -> InvalidParameter:
    integer = go_type in ("int", "int64", "uint", "uint16", "time.Duration")
    wrong_number = integer and isinstance(value, int | float) and not isinstance(value, bool)
    return InvalidParameter(
        f"invalid JSON: json: cannot unmarshal {kind_of(value, for_int=wrong_number)} "
        f"into Go struct field {struct}.{path} of type {go_type}"
    )


def value_error(value: Any, go_type: str) -> InvalidParameter:
    """A body that is not an object at all."""
    return InvalidParameter(
        f"invalid JSON: json: cannot unmarshal {kind_of(value)} into Go value of type {go_type}"
    )


# where a raw field sits: the Go struct that holds it, and the path from the root before its name
Where = tuple[str, str]
IN_HOST_CONFIG: Where = ("HostConfig", "HostConfig.")  # a create body's HostConfig
IN_UPDATE_CONFIG: Where = ("UpdateConfig", "")  # an update body (Resources embedded)


def _wrong(value: Any, at: Where, key: str, go_type: str) -> InvalidParameter:
    return type_error(value, at[0], at[1] + key, go_type)


def check_int(hc: dict[str, Any], key: str, go_type: str = "int64", at: Where = IN_HOST_CONFIG) -> int:
    """An integer field we read from a raw body (null or absent is 0)."""
    value = hc.get(key)
    if value is None:
        return 0
    low, high = UINT64 if go_type.startswith("uint") else INT64
    if go_type == "uint16":
        high = 2**16 - 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _wrong(value, at, key, go_type)
    return value


def check_str(hc: dict[str, Any], key: str, go_type: str = "string", at: Where = IN_HOST_CONFIG) -> str:
    value = hc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _wrong(value, at, key, go_type)
    return value


def check_bool(hc: dict[str, Any], key: str, at: Where = IN_HOST_CONFIG) -> bool:
    value = hc.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _wrong(value, at, key, "bool")
    return value


def check_list(hc: dict[str, Any], key: str, go_type: str, at: Where = IN_HOST_CONFIG) -> list[Any]:
    value = hc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _wrong(value, at, key, go_type)
    return value


def check_map(hc: dict[str, Any], key: str, go_type: str, at: Where = IN_HOST_CONFIG) -> dict[str, Any]:
    value = hc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _wrong(value, at, key, go_type)
    return value
