"""`pyd run` and `pyd create`, following the docker CLI's run.go flow."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from . import netopts, opts, ports
from .common import CLIError, StreamError, display_messages
from .format import cpus_to_nano, ram_in_bytes
from .http import APIError, Client
from .session import ExitWaiter, stream_attached
from .streams import DEFAULT_DETACH_KEYS, parse_detach_keys, terminal_size


def build_create_body(a: argparse.Namespace) -> dict[str, Any]:
    """The `POST /containers/create` body for run/create options (docker's field names)."""
    try:
        env = opts.parse_env(a.env)
        binds, volumes = opts.parse_volumes(a.volume)
        memory = ram_in_bytes(a.memory) if a.memory else 0
        nano_cpus = cpus_to_nano(a.cpus) if a.cpus else 0
        restart = opts.parse_restart(a.restart)
    except ValueError as e:
        raise CLIError(str(e), 125) from e
    net = _networking(a)
    attached = not getattr(a, "detach", True)
    host_config: dict[str, Any] = {
        "Binds": binds or None,
        "NetworkMode": a.network[0] if a.network else "default",
        "PortBindings": net["PortBindings"],
        "RestartPolicy": restart,
        "AutoRemove": a.rm,
        "CapAdd": [opts.normalize_capability(c) for c in a.cap_add] or None,
        "CapDrop": [opts.normalize_capability(c) for c in a.cap_drop] or None,
        "Privileged": a.privileged,
        "ReadonlyRootfs": a.read_only,
        "Memory": memory,
        "NanoCpus": nano_cpus,
        "PublishAllPorts": a.publish_all,
        "Dns": net["Dns"],
        "DnsOptions": list(a.dns_option),
        "DnsSearch": net["DnsSearch"],
        "ExtraHosts": net["ExtraHosts"] or None,
        "Links": net["Links"] or None,
    }
    if a.pids_limit is not None:
        host_config["PidsLimit"] = a.pids_limit
    size = terminal_size() if a.tty else None
    if size is not None:
        host_config["ConsoleSize"] = [size[0], size[1]]
    body: dict[str, Any] = {
        "Hostname": a.hostname or "",
        "Domainname": a.domainname,
        "User": a.user or "",
        "AttachStdin": attached and a.interactive,
        "AttachStdout": attached,
        "AttachStderr": attached,
        "ExposedPorts": net["ExposedPorts"] or None,
        "Tty": a.tty,
        "OpenStdin": a.interactive,
        "StdinOnce": attached and a.interactive,
        "Env": env or None,
        "Cmd": a.command or None,
        "Image": a.image,
        "Volumes": volumes,
        "WorkingDir": a.workdir or "",
        "Entrypoint": [a.entrypoint] if a.entrypoint is not None else None,
        "Labels": opts.parse_key_values(a.label),
        "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": net["EndpointsConfig"]},
    }
    if a.stop_signal:
        body["StopSignal"] = a.stop_signal
    if a.stop_timeout is not None:
        body["StopTimeout"] = a.stop_timeout
    return body


def _networking(a: argparse.Namespace) -> dict[str, Any]:
    """The networking fields of the create body; bad values fail like docker's flag and
    option errors (exit status 125)."""
    command = getattr(a, "command_name", None) or "run"
    try:
        dns = netopts.parse_dns(a.dns)
        fields: dict[str, Any] = {
            "Dns": dns,
            "DnsSearch": netopts.parse_dns_search(a.dns_search),
            "ExtraHosts": netopts.parse_extra_hosts(a.add_host),
            "Links": netopts.check_links(a.link),
        }
    except netopts.FlagError as e:
        raise CLIError(f"{e}\nSee 'pyd {command} --help'.", 125) from e
    try:
        exposed, fields["PortBindings"] = ports.parse_publish(a.publish)
        ports.parse_expose(a.expose, exposed)
        fields["ExposedPorts"] = exposed
        fields["EndpointsConfig"] = netopts.run_endpoints(
            a.network, a.network_alias, fields["Links"], a.ip, a.ip6, a.mac_address
        )
    except ValueError as e:
        raise CLIError(f"pyd: {e}\n\nRun 'pyd {command} --help' for more information", 125) from e
    if (server := netopts.loopback_dns(dns)) is not None:
        print(f"WARNING: Localhost DNS ({server}) may fail in containers.", file=sys.stderr)
    return fields


def pull(client: Client, image: str, out: Any) -> None:
    """`POST /images/create?fromImage=...` with the progress messages shown on `out`."""
    with client.request("POST", "/images/create", opts.pull_query(image)) as resp:
        display_messages(resp.iter_json(), out)


def create_container(client: Client, body: dict[str, Any], name: str | None) -> str:
    """Create; on `No such image` pull it (docker's default --pull=missing) and create again."""
    query = {"name": name} if name else None
    try:
        created = client.post("/containers/create", query, body)
    except APIError as e:
        if e.status != 404 or "No such image" not in e.message:
            raise
        print(f"Unable to find image '{opts.familiar_reference(body['Image'])}' locally", file=sys.stderr)
        pull(client, body["Image"], sys.stderr)
        created = client.post("/containers/create", query, body)
    for warning in created.get("Warnings") or []:
        print(f"WARNING: {warning}", file=sys.stderr)
    return str(created["Id"])


def run_status(error: Exception) -> int:
    """docker's toStatusError: 127 for a missing command, 126 when not executable, else 125."""
    text = str(error)
    if any(s in text for s in ("executable file not found", "no such file or directory")):
        return 127
    if "permission denied" in text or "is a directory" in text:
        return 126
    return 125


def _fail(error: Exception, command: str = "run") -> int:
    code = run_status(error)
    print(f"pyd: {error}\n\nRun 'pyd {command} --help' for more information", file=sys.stderr)
    return code


def cmd_create(client: Client, a: argparse.Namespace) -> int:
    a.detach = True
    try:
        print(create_container(client, build_create_body(a), a.name))
    except (APIError, StreamError) as e:
        return _fail(e, "create")
    return 0


def cmd_run(client: Client, a: argparse.Namespace) -> int:
    if not a.detach and a.interactive and a.tty and not os.isatty(0):
        raise CLIError("the input device is not a TTY")
    try:
        escape = parse_detach_keys(a.detach_keys) if a.detach_keys else DEFAULT_DETACH_KEYS
    except ValueError as e:
        raise CLIError(str(e), 125) from e
    body = build_create_body(a)
    try:
        container = create_container(client, body, a.name)
    except (APIError, StreamError) as e:
        return _fail(e)
    if a.detach:
        return _run_detached(client, container, a.rm)

    try:
        query = {"stream": True, "stdin": a.interactive, "stdout": True, "stderr": True}
        conn = client.hijack(f"/containers/{container}/attach", {**query, "detachKeys": a.detach_keys})
    except APIError as e:
        return _fail(e)
    waiter = ExitWaiter(client, container, "removed" if a.rm else "next-exit")
    try:
        client.post(f"/containers/{container}/start")
    except APIError as e:
        conn.close()
        if a.rm:
            waiter.result(timeout=10)  # like docker: let the daemon finish removing it
        waiter.close()
        return _fail(e)
    detached = stream_attached(
        client,
        conn,
        tty=a.tty,
        stdin=a.interactive,
        resize_path=f"/containers/{container}/resize",
        kill_path=f"/containers/{container}/kill" if a.sig_proxy and not a.tty else None,
        escape=escape,
    )
    if detached:
        waiter.close()
        return 0
    return waiter.result()


def _run_detached(client: Client, container: str, auto_remove: bool) -> int:
    waiter = ExitWaiter(client, container, "removed" if auto_remove else "next-exit", follow=False)
    print(container, flush=True)
    try:
        client.post(f"/containers/{container}/start")
    except APIError as e:
        return _fail(e)
    finally:
        waiter.close()
    return 0
