"""The body of `POST /containers/create`, checked field by field like Docker's JSON decoder would.

Each model names the Go struct it stands for and the Go type of each field, so a wrong type is answered
with the words of Go's encoding/json (see gojson.py). Keys we do not model stay in the body (extra="allow").
"""

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from daemon.errors import InvalidParameter
from daemon.gojson import INT64, UINT64, type_error, value_error

StrSlice = list[StrictStr] | StrictStr | None  # Docker's strslice: a string or a list of strings
Int64 = Annotated[StrictInt, Field(ge=INT64[0], le=INT64[1])]
UInt = Annotated[StrictInt, Field(ge=UINT64[0], le=UINT64[1])]
EmptyStruct = dict[str, Any] | None  # Go's struct{}: any object (its fields are ignored) or null


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)
    GO_STRUCT: ClassVar[str] = ""
    GO_TYPES: ClassVar[dict[str, str]] = {}


class RestartPolicyBody(_Model):
    GO_STRUCT = "RestartPolicy"
    GO_TYPES = {"Name": "container.RestartPolicyMode", "MaximumRetryCount": "int"}
    Name: StrictStr | None = ""
    MaximumRetryCount: Int64 | None = 0


class LogConfigBody(_Model):
    GO_STRUCT = "LogConfig"
    GO_TYPES = {"Type": "string", "Config": "map[string]string"}
    Type: StrictStr | None = ""
    Config: dict[str, StrictStr] | None = None


class UlimitBody(_Model):
    GO_STRUCT = "Ulimit"
    GO_TYPES = {"Name": "string", "Hard": "int64", "Soft": "int64"}
    Name: StrictStr | None = ""
    Hard: Int64 | None = 0
    Soft: Int64 | None = 0


class HealthcheckBody(_Model):
    GO_STRUCT = "HealthcheckConfig"
    GO_TYPES = {
        "Test": "[]string",
        "Interval": "time.Duration",
        "Timeout": "time.Duration",
        "StartPeriod": "time.Duration",
        "StartInterval": "time.Duration",
        "Retries": "int",
    }
    Test: list[StrictStr] | None = None
    Interval: Int64 | None = 0  # nanoseconds, as Go's time.Duration
    Timeout: Int64 | None = 0
    StartPeriod: Int64 | None = 0
    StartInterval: Int64 | None = 0
    Retries: Int64 | None = 0


class HostConfigBody(_Model):
    GO_STRUCT = "HostConfig"
    GO_TYPES = {
        "Binds": "[]string",
        "Memory": "int64",
        "MemorySwap": "int64",
        "MemoryReservation": "int64",
        "NanoCpus": "int64",
        "CpuShares": "int64",
        "CpuQuota": "int64",
        "CpuPeriod": "int64",
        "CpusetCpus": "string",
        "CpusetMems": "string",
        "PidsLimit": "int64",
        "AutoRemove": "bool",
        "RestartPolicy": "container.RestartPolicy",
        "Privileged": "bool",
        "CapAdd": "[]string",
        "CapDrop": "[]string",
        "ReadonlyRootfs": "bool",
        "NetworkMode": "container.NetworkMode",
        "SecurityOpt": "[]string",
        "LogConfig": "container.LogConfig",
        "ConsoleSize": "[2]uint",
        "Ulimits": "[]*units.Ulimit",
    }
    Binds: list[StrictStr] | None = None
    Memory: Int64 | None = 0
    MemorySwap: Int64 | None = 0
    MemoryReservation: Int64 | None = 0
    NanoCpus: Int64 | None = 0
    CpuShares: Int64 | None = 0
    CpuQuota: Int64 | None = 0
    CpuPeriod: Int64 | None = 0
    CpusetCpus: StrictStr | None = ""
    CpusetMems: StrictStr | None = ""
    PidsLimit: Int64 | None = None
    AutoRemove: StrictBool | None = False
    RestartPolicy: RestartPolicyBody | None = None
    Privileged: StrictBool | None = False
    CapAdd: list[StrictStr] | None = None
    CapDrop: list[StrictStr] | None = None
    ReadonlyRootfs: StrictBool | None = False
    NetworkMode: StrictStr | None = ""
    SecurityOpt: list[StrictStr] | None = None
    LogConfig: LogConfigBody | None = None
    ConsoleSize: list[UInt] | None = None
    Ulimits: list[UlimitBody] | None = None


class CreateBody(_Model):
    GO_STRUCT = "CreateRequest"
    GO_TYPES = {
        "Hostname": "string",
        "Domainname": "string",
        "User": "string",
        "AttachStdin": "bool",
        "AttachStdout": "bool",
        "AttachStderr": "bool",
        "ExposedPorts": "nat.PortSet",
        "Tty": "bool",
        "OpenStdin": "bool",
        "StdinOnce": "bool",
        "Env": "[]string",
        "Cmd": "strslice.StrSlice",
        "Healthcheck": "v1.HealthcheckConfig",
        "Image": "string",
        "Volumes": "map[string]struct {}",
        "WorkingDir": "string",
        "Entrypoint": "strslice.StrSlice",
        "Labels": "map[string]string",
        "StopSignal": "string",
        "StopTimeout": "int",
        "HostConfig": "container.HostConfig",
    }
    Hostname: StrictStr | None = ""
    Domainname: StrictStr | None = ""
    User: StrictStr | None = ""
    AttachStdin: StrictBool | None = False
    AttachStdout: StrictBool | None = False
    AttachStderr: StrictBool | None = False
    ExposedPorts: dict[str, EmptyStruct] | None = None
    Tty: StrictBool | None = False
    OpenStdin: StrictBool | None = False
    StdinOnce: StrictBool | None = False
    Env: list[StrictStr] | None = None
    Cmd: StrSlice = None
    Healthcheck: HealthcheckBody | None = None
    Entrypoint: StrSlice = None
    Image: StrictStr | None = ""
    Volumes: dict[str, EmptyStruct] | None = None
    Labels: dict[str, StrictStr] | None = None
    WorkingDir: StrictStr | None = ""
    StopSignal: StrictStr | None = ""
    StopTimeout: Int64 | None = None
    HostConfig_: HostConfigBody | None = Field(default=None, alias="HostConfig")


# Go types that are structs we model, and so can hold the field that is wrong
GO_MODELS: dict[str, type[_Model]] = {
    "container.HostConfig": HostConfigBody,
    "container.RestartPolicy": RestartPolicyBody,
    "container.LogConfig": LogConfigBody,
    "units.Ulimit": UlimitBody,
    "v1.HealthcheckConfig": HealthcheckBody,
}


def _element(go_type: str) -> str | None:
    """The Go type of a list item or map value, None for a type that has neither."""
    if go_type in ("nat.PortSet", "map[string]struct {}"):
        return "struct {}"
    if go_type.startswith("[]*"):
        return go_type[3:]
    if go_type.startswith("[]"):
        return go_type[2:]
    if go_type.startswith("[2]"):
        return go_type[3:]
    if go_type.startswith("map["):
        return go_type.split("]", 1)[1]
    return None


def go_error(err: Any, body: dict[str, Any]) -> InvalidParameter:
    """Docker's words for one pydantic error: walk its location through the Go structs."""
    model: type[_Model] | None = CreateBody
    struct, path, go_type = CreateBody.GO_STRUCT, [], "container.CreateRequest"
    raw: Any = body
    value = err.get("input")
    for part in err["loc"]:
        if model is not None and isinstance(part, str) and part in model.GO_TYPES:
            struct, go_type = model.GO_STRUCT, model.GO_TYPES[part]
            path.append(part)
            raw = raw.get(part) if isinstance(raw, dict) else None
            model = GO_MODELS.get(go_type)
            if go_type == "strslice.StrSlice":
                # its decoder tries a list, then a string, and reports the string attempt
                value, go_type = raw, "string"
                break
        elif model is None and (element := _element(go_type)) is not None:
            go_type, model = element, GO_MODELS.get(element)
            raw = raw[part] if isinstance(raw, list | dict) and _has(raw, part) else None
        # anything else is a pydantic union tag ("str", "list[str]"): not part of Go's path
    return type_error(value, struct, ".".join(path), go_type)


def _has(container: list[Any] | dict[str, Any], key: Any) -> bool:
    if isinstance(container, dict):
        return key in container
    return isinstance(key, int) and 0 <= key < len(container)


def parse_create(body: Any) -> CreateBody:
    """Validate, answering wrong types with Docker's (Go's) words and a 400."""
    if body is None:
        raise InvalidParameter("config cannot be empty in order to create a container")
    if not isinstance(body, dict):
        raise value_error(body, "container.CreateRequest")
    try:
        return CreateBody.model_validate(body)
    except ValidationError as e:
        raise go_error(e.errors()[0], body) from e
