"""A Networking for container-service tests: the create-time shape of the default bridge, and a record of
what the container service asked for (attach before start, detach at exit)."""

from typing import Any

from daemon.containers.store import Container


class FakeNetworking:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []  # (what, container id)
        self.fail_attach: Exception | None = None

    def container_settings(
        self, hc: dict[str, Any], config: dict[str, Any], networking: Any
    ) -> dict[str, Any]:
        mode = str(hc.get("NetworkMode") or "default")
        if mode == "default":
            hc["NetworkMode"] = mode = "bridge"
        return {} if mode.startswith("container:") else {mode: {"NetworkID": mode, "EndpointID": ""}}

    async def attach(self, c: Container, pid: int) -> None:
        self.calls.append(("attach", c.id))
        if self.fail_attach is not None:
            raise self.fail_attach

    async def detach(self, c: Container) -> None:
        self.calls.append(("detach", c.id))

    def write_etc_files(self, c: Container) -> None:
        (c.dir / "hosts").write_text("127.0.0.1\tlocalhost\n")
        (c.dir / "resolv.conf").write_text("")

    def renamed(self, c: Container) -> None:
        self.calls.append(("renamed", c.id))
