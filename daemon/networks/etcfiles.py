"""A container's /etc/hosts and /etc/resolv.conf, as Docker writes them.

Both are bind-mounted into the running container, so a change is written in place (truncate and write):
a rename would leave the container looking at the old file."""

import contextlib
from pathlib import Path

LOCALHOST = (
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
)


def read_host_file(path: str) -> str:
    with contextlib.suppress(OSError):
        return Path(path).read_text()
    return ""


def hosts_content(
    hostname: str,
    domainname: str,
    addresses: list[str],
    extra: list[tuple[str, str]],
    links: list[tuple[str, str, str]],
    base: str = LOCALHOST,
) -> str:
    """`base` (the localhost lines, or the host's own file with the host's network), then the
    --add-host entries, the legacy links (ip, alias, name) and the container's own addresses."""
    lines = [base if base.endswith("\n") or not base else base + "\n"]
    lines += [f"{ip}\t{name}\n" for name, ip in extra]
    for ip, alias, name in links:
        lines.append(f"{ip}\t{alias} {name}\n" if alias != name else f"{ip}\t{name}\n")
    own = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    lines += [f"{ip}\t{own}\n" for ip in addresses if hostname]
    return "".join(lines)


def write_in_place(path: Path, content: str) -> None:
    """Truncate and write the same inode: the running container has it bind-mounted."""
    with open(path, "r+" if path.exists() else "w") as f:
        f.seek(0)
        f.write(content)
        f.truncate()
