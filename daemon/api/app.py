"""build_app(services) -> the aiohttp application, with Docker's error mapping in one place."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from daemon.api.common import Handler, error_response
from daemon.api.unimplemented import missing_feature, missing_object
from daemon.errors import DaemonError

log = logging.getLogger(__name__)


@dataclass
class Services:
    """The backends the routes call. Each route module declares the Protocol it needs."""

    system: Any
    containers: Any
    images: Any
    execs: Any
    events: Any


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
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        not_found = missing_object(request.method, request.path)
        if not_found:
            return error_response(not_found, 404)
        feature = missing_feature(request.method, request.path)
        if feature:
            return error_response(f"{feature} is not implemented in pydockerd yet", 501)
        return error_response("page not found", 404)
    except web.HTTPException:
        raise
    except Exception as e:  # anything else is our bug: log it, answer 500
        log.exception("%s %s failed", request.method, request.path)
        return error_response(str(e) or e.__class__.__name__, 500)


def build_app(services: Services) -> web.Application:
    from daemon.api import containers, execs, images, system

    app = web.Application(middlewares=[error_middleware], client_max_size=64 * 1024 * 1024)
    app[SERVICES] = services
    registrars: list[Callable[[web.Application, Services], None]] = [
        system.register,
        containers.register,
        execs.register,
        images.register,
    ]
    for register in registrars:
        register(app, services)
    return app


SERVICES = web.AppKey("services", Services)
