"""`pyd`: a thin docker-like CLI speaking the Docker Engine API to pydockerd."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .common import CLIError, StreamError
from .http import API_VERSION, CLIENT_VERSION, DEFAULT_HOST, APIError, Client, ConnectionFailed
from .template import TemplateError

Handler = Callable[[Client, argparse.Namespace], int]


def _handler(spec: str) -> Handler:
    """`module:function`, imported only when that command runs (keeps `pyd ps` start-up short)."""
    module, _, name = spec.partition(":")
    handler: Handler = getattr(importlib.import_module(f"{__package__}.{module}"), name)
    return handler


class Parser(argparse.ArgumentParser):
    """Usage errors exit with 125, like the docker CLI's flag errors."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(125, f"{self.prog}: {message}\nSee '{self.prog} --help'.\n")


def _bool(value: str) -> bool:
    if value.lower() in ("1", "true", "t", "yes"):
        return True
    if value.lower() in ("0", "false", "f", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {value!r}")


def _container_options(p: argparse.ArgumentParser) -> None:
    """Flags shared by `run` and `create` (-h is --hostname here, as in docker)."""
    p.add_argument("--help", action="help", help="Print usage")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("--rm", action="store_true", help="Automatically remove the container when it exits")
    p.add_argument("--name", help="Assign a name to the container")
    p.add_argument("-e", "--env", action="append", default=[], help="Set environment variables")
    p.add_argument("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("-w", "--workdir", help="Working directory inside the container")
    p.add_argument("-v", "--volume", action="append", default=[], help="Bind mount a volume")
    p.add_argument("-p", "--publish", action="append", default=[], help="Publish a container's port(s)")
    p.add_argument("--entrypoint", help="Overwrite the default ENTRYPOINT of the image")
    p.add_argument("-m", "--memory", help="Memory limit (e.g. 64m, 1g)")
    p.add_argument("--cpus", help="Number of CPUs")
    p.add_argument("--pids-limit", type=int, help="Tune container pids limit (set -1 for unlimited)")
    p.add_argument("-h", "--hostname", help="Container host name")
    _network_options(p)
    p.add_argument("-l", "--label", action="append", default=[], help="Set meta data on a container")
    p.add_argument("--privileged", action="store_true", help="Give extended privileges to this container")
    p.add_argument("--cap-add", action="append", default=[], help="Add Linux capabilities")
    p.add_argument("--cap-drop", action="append", default=[], help="Drop Linux capabilities")
    p.add_argument("--read-only", action="store_true", help="Mount the root filesystem read only")
    p.add_argument("--stop-signal", help="Signal to stop the container")
    p.add_argument("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container")
    p.add_argument("--restart", default="no", help="Restart policy to apply when a container exits")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("command", metavar="COMMAND", nargs=argparse.REMAINDER, help="command and arguments")


def _network_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-P", "--publish-all", action="store_true", help="Publish all exposed ports")
    p.add_argument("--expose", action="append", default=[], help="Expose a port or a range of ports")
    p.add_argument("--network", "--net", action="append", default=[], help="Connect a container to a network")
    p.add_argument("--network-alias", action="append", default=[], help="Add network-scoped alias")
    p.add_argument("--ip", default="", help="IPv4 address (e.g., 172.30.100.104)")
    p.add_argument("--ip6", default="", help="IPv6 address (e.g., 2001:db8::33)")
    p.add_argument("--mac-address", default="", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)")
    p.add_argument("--dns", action="append", default=[], help="Set custom DNS servers")
    p.add_argument("--dns-search", action="append", default=[], help="Set custom DNS search domains")
    p.add_argument("--dns-option", "--dns-opt", action="append", default=[], help="Set DNS options")
    p.add_argument("--add-host", action="append", default=[], help="Add a custom host-to-IP mapping")
    p.add_argument("--link", action="append", default=[], help="Add link to another container")
    p.add_argument("--domainname", default="", help="Container NIS domain name")


def _network_commands(sub: Any) -> None:
    """`pyd network ...`; `pyd network` alone prints this group's help."""
    group = sub.add_parser("network", help="Manage networks", description="Manage networks")
    group.set_defaults(help_parser=group)
    nsub = group.add_subparsers(dest="network_command", metavar="COMMAND", parser_class=Parser)

    def command(name: str, handler: str, text: str, aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
        p = nsub.add_parser(name, help=text, description=text, aliases=list(aliases))
        p.set_defaults(handler=f"cmd_network:{handler}")
        return p

    p = command("create", "cmd_network_create", "Create a network")
    p.add_argument("-d", "--driver", default="bridge", help="Driver to manage the Network")
    p.add_argument("--subnet", action="append", default=[], help="Subnet in CIDR format")
    p.add_argument("--gateway", action="append", default=[], help="Gateway for the master subnet")
    p.add_argument("--ip-range", action="append", default=[], help="Allocate container ip from a sub-range")
    p.add_argument("--aux-address", action="append", default=[], help="Auxiliary addresses used by driver")
    p.add_argument("--ipam-driver", default="default", help="IP Address Management Driver")
    p.add_argument("--ipam-opt", action="append", default=[], help="Set IPAM driver specific options")
    p.add_argument("--internal", action="store_true", help="Restrict external access to the network")
    p.add_argument("--ipv6", action="store_true", help="Enable or disable IPv6 networking")
    p.add_argument("--attachable", action="store_true", help="Enable manual container attachment")
    p.add_argument("--label", action="append", default=[], help="Set metadata on a network")
    p.add_argument("-o", "--opt", action="append", default=[], help="Set driver specific options")
    p.add_argument("name", metavar="NETWORK")

    p = command("ls", "cmd_network_ls", "List networks", aliases=["list"])
    p.add_argument("-q", "--quiet", action="store_true", help="Only display network IDs")
    p.add_argument("-f", "--filter", action="append", default=[], help="Provide filter values")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate the output")
    p.add_argument("--format", help="Format output using a Go template subset, 'table ...' or 'json'")

    p = command("inspect", "cmd_network_inspect", "Display detailed information on one or more networks")
    p.add_argument("-f", "--format", help="Format output using a Go template subset")
    p.add_argument("-v", "--verbose", action="store_true", help="Verbose output for diagnostics")
    p.add_argument("networks", metavar="NETWORK", nargs="+")

    p = command("rm", "cmd_network_rm", "Remove one or more networks", aliases=["remove"])
    p.add_argument("-f", "--force", action="store_true", help="Do not error if the network does not exist")
    p.add_argument("networks", metavar="NETWORK", nargs="+")

    p = command("connect", "cmd_network_connect", "Connect a container to a network")
    p.add_argument("--ip", default="", help="IPv4 address (e.g., 172.30.100.104)")
    p.add_argument("--ip6", default="", help="IPv6 address (e.g., 2001:db8::33)")
    p.add_argument("--alias", action="append", default=[], help="Add network-scoped alias for the container")
    p.add_argument("--link", action="append", default=[], help="Add link to another container")
    p.add_argument("--driver-opt", action="append", default=[], help="driver options for the network")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")

    p = command("disconnect", "cmd_network_disconnect", "Disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true", help="Force the container to disconnect")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")

    p = command("prune", "cmd_network_prune", "Remove all unused networks")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="Provide filter values")


def _containers(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", metavar="CONTAINER", nargs="+")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pyd", description="A docker-like client for pydockerd.")
    parser.add_argument("-H", "--host", help=f"Daemon socket (default $DOCKER_HOST or {DEFAULT_HOST})")
    parser.add_argument("--version", action="store_true", help="Print version information and quit")
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", parser_class=Parser)

    def command(name: str, handler: str, help_text: str, **kwargs: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, **kwargs)
        p.set_defaults(handler=handler)
        return p

    p = command("run", "cmd_run:cmd_run", "Create and run a new container from an image", add_help=False)
    p.add_argument("-d", "--detach", action="store_true", help="Run in background, print container ID")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("--sig-proxy", type=_bool, nargs="?", const=True, default=True, help="Proxy signals")
    _container_options(p)

    p = command("create", "cmd_run:cmd_create", "Create a new container", add_help=False)
    _container_options(p)

    p = command("ps", "cmd_query:cmd_ps", "List containers")
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default: running)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions")
    p.add_argument("-n", "--last", type=int, default=-1, help="Show n last created containers")
    p.add_argument("-l", "--latest", action="store_true", help="Show the latest created container")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")
    p.add_argument("--format", help="Format output using a Go template subset, 'table ...' or 'json'")

    p = command("logs", "cmd_query:cmd_logs", "Fetch the logs of a container")
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("-n", "--tail", default="all", help="Number of lines to show from the end of the logs")
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.add_argument("--since", help="Show logs since timestamp or relative (e.g. 42m)")
    p.add_argument("--until", help="Show logs before a timestamp or relative (e.g. 42m)")
    p.add_argument("container", metavar="CONTAINER")

    p = command("exec", "cmd_attach:cmd_exec", "Execute a command in a running container")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("-d", "--detach", action="store_true", help="Detached mode: run command in the background")
    p.add_argument("-e", "--env", action="append", default=[], help="Set environment variables")
    p.add_argument("-u", "--user", help="Username or UID")
    p.add_argument("-w", "--workdir", help="Working directory inside the container")
    p.add_argument("--privileged", action="store_true", help="Give extended privileges to the command")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", metavar="COMMAND", nargs=argparse.REMAINDER)

    p = command("start", "cmd_attach:cmd_start", "Start one or more stopped containers")
    p.add_argument("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR and forward signals")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    _containers(p)

    for name, handler, text in (
        ("stop", "cmd_lifecycle:cmd_stop", "Stop one or more running containers"),
        ("restart", "cmd_lifecycle:cmd_restart", "Restart one or more containers"),
    ):
        p = command(name, handler, text)
        p.add_argument("-t", "--time", "--timeout", type=int, help="Seconds to wait before killing it")
        p.add_argument("-s", "--signal", help="Signal to send to the container")
        _containers(p)

    p = command("kill", "cmd_lifecycle:cmd_kill", "Kill one or more running containers")
    p.add_argument("-s", "--signal", help="Signal to send to the container")
    _containers(p)

    p = command("rm", "cmd_lifecycle:cmd_rm", "Remove one or more containers")
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of a running container")
    p.add_argument("-v", "--volumes", action="store_true", help="Remove anonymous volumes of the container")
    _containers(p)

    for name, handler, text in (
        ("wait", "cmd_lifecycle:cmd_wait", "Block until containers stop, then print their exit codes"),
        ("pause", "cmd_lifecycle:cmd_pause", "Pause all processes within one or more containers"),
        ("unpause", "cmd_lifecycle:cmd_unpause", "Unpause all processes within one or more containers"),
    ):
        _containers(command(name, handler, text))

    p = command("top", "cmd_query:cmd_top", "Display the running processes of a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", metavar="PS OPTIONS", nargs=argparse.REMAINDER)

    p = command("rename", "cmd_lifecycle:cmd_rename", "Rename a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")

    p = command("inspect", "cmd_query:cmd_inspect", "Return low-level information on Docker objects")
    p.add_argument("-f", "--format", help="Format output using a Go template subset")
    p.add_argument("--type", choices=("container", "image", "network", "volume"), help="Only this type")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes for containers")
    p.add_argument("names", metavar="NAME|ID", nargs="+")

    p = command("attach", "cmd_attach:cmd_attach", "Attach local stdin, stdout and stderr to a container")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN")
    p.add_argument("--sig-proxy", type=_bool, nargs="?", const=True, default=True, help="Proxy signals")
    p.add_argument("container", metavar="CONTAINER")

    p = command("port", "cmd_query:cmd_port", "List port mappings or a specific mapping for the container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("private_port", metavar="PRIVATE_PORT[/PROTO]", nargs="?")

    _network_commands(sub)

    p = command("images", "cmd_images:cmd_images", "List images")
    p.add_argument("-a", "--all", action="store_true", help="Show all images (default hides intermediate)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions")
    p.add_argument("--format", help="Format output using a Go template subset, 'table ...' or 'json'")
    p.add_argument("reference", metavar="REPOSITORY[:TAG]", nargs="?")

    p = command("pull", "cmd_images:cmd_pull", "Download an image from a registry")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("image", metavar="NAME[:TAG|@DIGEST]")

    p = command("import", "cmd_images:cmd_import", "Import a tarball to create a filesystem image")
    p.add_argument("-c", "--change", action="append", default=[], help="Apply a Dockerfile instruction")
    p.add_argument("-m", "--message", help="Set commit message for imported image")
    p.add_argument("source", metavar="file|URL|-")
    p.add_argument("reference", metavar="REPOSITORY[:TAG]", nargs="?")

    p = command("load", "cmd_images:cmd_load", "Load an image from a tar archive or STDIN")
    p.add_argument("-i", "--input", help="Read from tar archive file, instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the load output")

    p = command("tag", "cmd_images:cmd_tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")

    p = command("rmi", "cmd_images:cmd_rmi", "Remove one or more images")
    p.add_argument("-f", "--force", action="store_true", help="Force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="Do not delete untagged parents")
    p.add_argument("images", metavar="IMAGE", nargs="+")

    p = command("version", "cmd_system:cmd_version", "Show the pyd and pydockerd version information")
    p.add_argument("-f", "--format", help="Format output using a Go template subset")

    p = command("info", "cmd_system:cmd_info", "Display system-wide information")
    p.add_argument("-f", "--format", help="Format output using a Go template subset")

    p = command("events", "cmd_system:cmd_events", "Get real time events from the server")
    p.add_argument("--since", help="Show all events created since timestamp")
    p.add_argument("--until", help="Stream events until this timestamp")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions")
    p.add_argument("--format", help="Format output using a Go template subset or 'json'")
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command_name == "exec" and not args.command:
        parser.exit(125, "pyd: 'exec' requires at least 2 arguments.\nSee 'pyd exec --help'.\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(f"pyd version {CLIENT_VERSION}, API {API_VERSION}")
        return 0
    if not getattr(args, "handler", None):
        getattr(args, "help_parser", parser).print_help()
        return 0
    _check_args(parser, args)
    try:
        client = Client(args.host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST)
        return int(_handler(args.handler)(client, args))
    except (APIError, ConnectionFailed, StreamError) as e:
        print(e, file=sys.stderr)
        return 1
    except CLIError as e:
        print(e.message, file=sys.stderr)
        return e.code
    except TemplateError as e:
        print(f"template: {e}", file=sys.stderr)
        return 1
    except ValueError as e:  # a malformed -H/DOCKER_HOST
        print(e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Our reader left (`pyd ps | head`): silence Python's complaint when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:
        print(f"error during connect: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
