"""The API layer's shape: route modules import in any order (no app <-> routes cycle), and the edge
from the routes to the services is typed (no backend or Services field is Any)."""

import inspect
import subprocess
import sys
import typing
from dataclasses import fields

import pytest

from daemon.api import app, containers, execs, images, networks, system
from tests.conftest import REPO

MODULES = [
    "daemon.api.containers",
    "daemon.api.execs",
    "daemon.api.system",
    "daemon.api.images",
    "daemon.api.networks",
    "daemon.api.app",
]
ROUTES = [
    containers.ContainerRoutes,
    execs.ExecRoutes,
    system.SystemRoutes,
    images.ImageRoutes,
    networks.NetworkRoutes,
]
BACKENDS = [
    containers.ContainerBackend,
    execs.ExecBackend,
    system.SystemBackend,
    system.EventsBackend,
    images.ImageBackend,
    networks.NetworkBackend,
]
ORDERS = [[first] + [m for m in MODULES if m != first] for first in MODULES] + [MODULES[::-1]]


@pytest.mark.parametrize("order", ORDERS, ids=lambda order: order[0].rsplit(".", 1)[1] + "-first")
def test_route_modules_import_in_any_order(order: list[str]) -> None:
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in order)
    code += "from daemon.api.app import build_app, Services\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_no_route_module_imports_the_app_or_the_runtime() -> None:
    for module in (containers, execs, images, networks, system):
        source = inspect.getsource(module)
        assert "daemon.api.app" not in source and "daemon.runtime" not in source, module.__name__


def _any_in(hints: dict[str, object]) -> list[str]:
    return [name for name, hint in hints.items() if hint is typing.Any]


def test_services_and_route_backends_are_typed() -> None:
    names = {"system", "containers", "images", "execs", "events", "networks"}
    assert {f.name for f in fields(app.Services)} == names
    service_hints = typing.get_type_hints(app.Services)
    assert _any_in(service_hints) == []
    assert set(service_hints.values()) <= set(BACKENDS)
    for routes in ROUTES:
        hints = typing.get_type_hints(routes.__init__)
        assert _any_in(hints) == [], routes.__name__
        assert {hints[p] for p in hints if p != "return"} <= set(BACKENDS), routes.__name__


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.__name__)
def test_backend_methods_have_no_untyped_parameters_or_results(backend: type) -> None:
    methods = [m for name, m in vars(backend).items() if inspect.isfunction(m) and not name.startswith("_")]
    assert methods, backend.__name__
    for method in methods:
        signature = inspect.signature(method)
        hints = typing.get_type_hints(method)
        unannotated = [p for p in list(signature.parameters)[1:] if p not in hints]
        assert unannotated == [] and "return" in hints, method.__qualname__
        assert _any_in(hints) == [], method.__qualname__
