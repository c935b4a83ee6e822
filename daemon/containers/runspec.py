"""What the runtime is told: a container's record (Docker's config) turned into a ContainerSpec, and the
/etc files every container gets. Knows the record's shape and the runtime's, nothing of the life cycle."""

import base64
from typing import Any

from daemon.containers import bind_specs
from daemon.containers.networking import joined_container, network_mode
from daemon.containers.security import SeccompPolicy, no_new_privileges, process_caps
from daemon.containers.store import Container
from daemon.containers.ulimits import rlimits
from daemon.runtime.spec import MASKED_PATHS, READONLY_PATHS, BindMount, ContainerSpec, ProcessSpec


def container_caps(hc: dict[str, Any]) -> list[str]:
    return process_caps(hc, bool(hc.get("Privileged")))


def write_hostname(c: Container) -> None:
    """/etc/hostname of the container, bound over the image's at start (the network service writes
    /etc/hosts and /etc/resolv.conf)."""
    (c.dir / "hostname").write_text(c.config["Hostname"] + "\n")


async def build_spec(c: Container, seccomp: SeccompPolicy) -> ContainerSpec:
    """The spec of the container's first process and its root; missing bind sources are made here, as
    `docker run -v` does."""
    hc, cfg = c.host_config, c.config
    privileged = bool(hc.get("Privileged"))
    mode = network_mode(c)
    size = hc.get("ConsoleSize") or [0, 0]
    process = ProcessSpec(
        args=[c.data["Path"], *c.data["Args"]],
        env=list(cfg.get("Env") or []),
        cwd=cfg.get("WorkingDir") or "/",
        user=cfg.get("User") or "",
        tty=bool(cfg.get("Tty")),
        open_stdin=bool(cfg.get("OpenStdin")),
        stdin_once=bool(cfg.get("StdinOnce")),
        caps=container_caps(hc),
        no_new_privs=no_new_privileges(hc),
        privileged=privileged,
        rlimits=rlimits(hc),
    )
    compiled = await seccomp.filter_for(hc, process.caps)
    binds = bind_specs.parse_binds(hc.get("Binds"))
    for b in binds:
        bind_specs.ensure_source(b)
    graph = c.data["GraphDriver"]["Data"]
    return ContainerSpec(
        id=c.id,
        process=process,
        lower_dirs=graph["LowerDir"].split(":"),
        upper_dir=graph["UpperDir"],
        work_dir=graph["WorkDir"],
        hostname=cfg.get("Hostname") or "",
        domainname=cfg.get("Domainname") or "",
        readonly_rootfs=bool(hc.get("ReadonlyRootfs")),
        network_mode="host" if mode == "host" else "join" if joined_container(c) else "private",
        mounts=[BindMount(b.source, b.destination, b.readonly) for b in binds],
        etc_files={
            "/etc/hostname": c.data["HostnamePath"],
            "/etc/hosts": c.data["HostsPath"],
            "/etc/resolv.conf": c.data["ResolvConfPath"],
        },
        resources=hc,
        masked_paths=[] if privileged else list(MASKED_PATHS),
        readonly_paths=[] if privileged else list(READONLY_PATHS),
        log_path=c.data["LogPath"],
        tty_size=(size[0], size[1]) if size and size[0] and size[1] else None,
        seccomp_filter=base64.b64encode(compiled.program).decode() if compiled else "",
        seccomp_flags=compiled.flags if compiled else 0,
    )


def start_failure(message: str, code: int | None = None) -> tuple[int, str]:
    """Docker's words for a runtime's refusal to start a container, and the exit code the docker CLI
    derives from them (127: no such command, 126: not executable), as moby's start does."""
    if code is None or code == 0:
        if "executable file not found" in message or "no such file or directory" in message:
            code = 127
        elif "permission denied" in message:
            code = 126
        else:
            code = 128
    full = (
        "failed to create task for container: failed to create shim task: OCI runtime create failed: "
        f"unable to start container process: {message}: unknown"
    )
    if "not a directory" in message.lower():  # moby's hint for a bind of the wrong kind, and its 127
        full += (
            ": Are you trying to mount a directory onto a file (or vice-versa)? "
            "Check if the specified host path exists and is the expected type"
        )
        code = 127
    return code, full
