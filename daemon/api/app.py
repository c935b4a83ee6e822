"""build_app(services) -> the aiohttp application, with Docker's error mapping in one place."""

import logging
from dataclasses import dataclass

from aiohttp import web

from daemon.api import containers, execs, images, networks, system
from daemon.api.common import Handler, error_response
from daemon.api.containers import ContainerBackend
from daemon.api.disconnect import client_gone
from daemon.api.execs import ExecBackend
from daemon.api.images import ImageBackend
from daemon.api.networks import NetworkBackend
from daemon.api.system import EventsBackend, SystemBackend
from daemon.api.unimplemented import missing_feature, missing_object
from daemon.apiversion import API_VERSION, MIN_API_VERSION, parse_version
from daemon.errors import DaemonError

log = logging.getLogger(__name__)


@dataclass
class Services:
    """The backends the routes call, each typed with the Protocol its route module declares."""

    system: SystemBackend
    containers: ContainerBackend
    images: ImageBackend
    execs: ExecBackend
    events: EventsBackend
    networks: NetworkBackend


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DaemonError as e:
        if e.status >= 500:
            log.warning("%s %s: %s", request.method, request.path, e.message)
        if e.status == 304:
            return web.Response(status=304)
        return error_response(e.message, e.status)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as e:
        not_found = missing_object(request.method, request.path)
        if not_found:
            return error_response(not_found, 404)
        feature = missing_feature(request.method, request.path)
        if feature:
            return error_response(f"{feature} is not implemented in pydockerd yet", 501)
        if isinstance(e, web.HTTPMethodNotAllowed):
            return method_not_allowed(request.method, e.allowed_methods)
        return error_response("page not found", 404)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        # aiohttp's own refusals (a body over client_max_size: 413) in Docker's JSON shape
        return error_response(e.text or e.reason, e.status)
    except Exception as e:  # our bug, or a connection of ours that broke: log it, answer 500 without
        # its words (paths, names). A client that went away is normal: nobody to answer, nothing to log.
        if isinstance(e, ConnectionError) and client_gone(request):
            log.debug("%s %s: the client went away", request.method, request.path)
            return web.Response(status=499)  # never sent; aiohttp just closes what is left
        log.exception("%s %s failed", request.method, request.path)
        return error_response("internal error in pydockerd; the daemon's log has the details", 500)


def method_not_allowed(method: str, allowed: set[str]) -> web.Response:
    """405 with the Allow header HTTP asks for. (Docker answers 404 "page not found" here: moby sets
    gorilla/mux's MethodNotAllowedHandler to its not-found handler. We say what is wrong instead;
    no client sends a method a route does not have, so none can tell.)"""
    methods = sorted(allowed)
    resp = error_response(f"method {method} is not allowed here; allowed: {', '.join(methods)}", 405)
    resp.headers["Allow"] = ", ".join(methods)
    return resp


_NEWEST, _OLDEST = parse_version(API_VERSION), parse_version(MIN_API_VERSION)


@web.middleware
async def version_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse API versions outside [MIN_API_VERSION, API_VERSION], with Docker's words."""
    asked = request.match_info.get("api_version")
    if asked:
        version = parse_version(asked)
        if version > _NEWEST:
            return error_response(
                f"client version {asked} is too new. Maximum supported API version is {API_VERSION}", 400
            )
        if version < _OLDEST:
            return error_response(
                f"client version {asked} is too old. Minimum supported API version is {MIN_API_VERSION}, "
                "please upgrade your client to a newer version",
                400,
            )
    return await handler(request)


def build_app(services: Services) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, version_middleware], client_max_size=64 * 1024 * 1024
    )
    system.register(app, services.system, services.events)
    containers.register(app, services.containers)
    execs.register(app, services.execs)
    images.register(app, services.images)
    networks.register(app, services.networks)
    return app
