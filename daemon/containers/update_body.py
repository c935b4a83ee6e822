"""The body of `POST /containers/{id}/update` read like dockerd reads it (container.UpdateConfig).

A zero value means "leave it as it is" (moby container.UpdateContainer copies only what is set): the
docker CLI sends every resource key on each update, so `docker update --restart always` must not
clear a memory limit. PidsLimit is the exception: absent or null leaves it, zero or less lifts it.
"""

from dataclasses import dataclass
from typing import Any

from daemon.containers.model import RestartPolicyBody
from daemon.containers.record import NUMERIC_RESOURCE_KEYS
from daemon.containers.validate import check_restart_policy
from daemon.errors import Conflict, NotImplementedYet
from daemon.gojson import IN_UPDATE_CONFIG, check_int, check_str, type_error, value_error

# resource keys dockerd's update applies and we do not (the ones it ignores, such as Ulimits, we ignore too)
NOT_APPLIED = ("BlkioWeight", "CpuRealtimePeriod", "CpuRealtimeRuntime")


@dataclass
class Update:
    resources: dict[str, Any]  # the HostConfig resource keys to change
    restart_policy: dict[str, Any] | None  # the new policy, or None to keep it


def parse_update(body: Any, cid: str, auto_remove: bool) -> Update:
    if not isinstance(body, dict):
        raise value_error(body, "container.UpdateConfig")
    changes: dict[str, Any] = {}
    for key in NUMERIC_RESOURCE_KEYS:
        if number := check_int(body, key, at=IN_UPDATE_CONFIG):
            changes[key] = number
    for key in ("CpusetCpus", "CpusetMems"):
        if text := check_str(body, key, at=IN_UPDATE_CONFIG):
            changes[key] = text
    if body.get("PidsLimit") is not None:
        changes["PidsLimit"] = max(check_int(body, "PidsLimit", at=IN_UPDATE_CONFIG), 0)
    for key in NOT_APPLIED:
        if check_int(body, key, "uint16" if key == "BlkioWeight" else "int64", at=IN_UPDATE_CONFIG):
            raise NotImplementedYet(f"updating {key} is not implemented in pydockerd yet")
    return Update(changes, _restart_policy(body.get("RestartPolicy"), cid, auto_remove))


def _restart_policy(raw: Any, cid: str, auto_remove: bool) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise type_error(raw, "UpdateConfig", "RestartPolicy", "container.RestartPolicy")
    name, retries = raw.get("Name"), raw.get("MaximumRetryCount")
    if name is not None and not isinstance(name, str):
        raise type_error(name, "RestartPolicy", "RestartPolicy.Name", "container.RestartPolicyMode")
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int)):
        raise type_error(retries, "RestartPolicy", "RestartPolicy.MaximumRetryCount", "int")
    if not name:
        return None  # dockerd keeps the policy when the name is empty
    check_restart_policy(RestartPolicyBody(Name=name, MaximumRetryCount=retries or 0), auto_remove=False)
    if auto_remove and name != "no":
        raise Conflict(
            f"Cannot update container {cid}: "
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
        )
    return {"Name": name, "MaximumRetryCount": retries or 0}
