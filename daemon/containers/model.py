"""The body of `POST /containers/create`, checked field by field like Docker's JSON decoder would."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from daemon.errors import InvalidParameter

StrSlice = list[StrictStr] | StrictStr | None  # Docker's strslice: a string or a list of strings


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)


class RestartPolicyBody(_Model):
    Name: StrictStr | None = ""
    MaximumRetryCount: StrictInt | None = 0


class LogConfigBody(_Model):
    Type: StrictStr | None = ""
    Config: dict[str, StrictStr] | None = None


class HostConfigBody(_Model):
    Binds: list[StrictStr] | None = None
    Memory: StrictInt | None = 0
    MemorySwap: StrictInt | None = 0
    MemoryReservation: StrictInt | None = 0
    NanoCpus: StrictInt | None = 0
    CpuShares: StrictInt | None = 0
    CpuQuota: StrictInt | None = 0
    CpuPeriod: StrictInt | None = 0
    CpusetCpus: StrictStr | None = ""
    CpusetMems: StrictStr | None = ""
    PidsLimit: StrictInt | None = None
    AutoRemove: StrictBool | None = False
    RestartPolicy: RestartPolicyBody | None = None
    Privileged: StrictBool | None = False
    CapAdd: list[StrictStr] | None = None
    CapDrop: list[StrictStr] | None = None
    ReadonlyRootfs: StrictBool | None = False
    NetworkMode: StrictStr | None = ""
    SecurityOpt: list[StrictStr] | None = None
    LogConfig: LogConfigBody | None = None
    ConsoleSize: list[StrictInt] | None = None


class CreateBody(_Model):
    Hostname: StrictStr | None = ""
    Domainname: StrictStr | None = ""
    User: StrictStr | None = ""
    AttachStdin: StrictBool | None = False
    AttachStdout: StrictBool | None = False
    AttachStderr: StrictBool | None = False
    Tty: StrictBool | None = False
    OpenStdin: StrictBool | None = False
    StdinOnce: StrictBool | None = False
    Env: list[StrictStr] | None = None
    Cmd: StrSlice = None
    Entrypoint: StrSlice = None
    Image: StrictStr | None = ""
    Labels: dict[str, StrictStr] | None = None
    WorkingDir: StrictStr | None = ""
    StopSignal: StrictStr | None = ""
    StopTimeout: StrictInt | None = None
    HostConfig_: HostConfigBody | None = Field(default=None, alias="HostConfig")


GO_TYPES = {"int": "int64", "bool": "bool", "str": "string", "list": "[]string", "dict": "map[string]string"}


def _go_type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def parse_create(body: Any) -> CreateBody:
    """Validate, answering wrong types with Docker's (Go's) words and a 400."""
    if not isinstance(body, dict):
        raise InvalidParameter("json: cannot unmarshal into Go value of type container.CreateRequest")
    try:
        return CreateBody.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        loc = [str(p) for p in err["loc"] if not str(p).isdigit()]
        # pydantic reports each member of a union; the field path is what matters
        field_path = ".".join(p for p in loc if "[" not in p and p not in ("str", "list[str]"))
        value = err.get("input")
        struct = "HostConfig" if field_path.startswith("HostConfig") else "Config"
        raise InvalidParameter(
            f"json: cannot unmarshal {_go_type_of(value)} into Go struct field "
            f"{struct}.{field_path.removeprefix('HostConfig.')} of type {_expected(err['type'])}"
        ) from e


def _expected(kind: str) -> str:
    for prefix, go in (
        ("int", "int64"),
        ("bool", "bool"),
        ("string", "string"),
        ("list", "[]string"),
        ("dict", "map"),
    ):
        if kind.startswith(prefix):
            return go
    return kind
