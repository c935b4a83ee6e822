"""One client connection: aiohttp's request handler with a header-read timeout and Docker-shaped refusals.

Timeouts, as dockerd's Go http.Server has them (ReadHeaderTimeout) plus an idle limit dockerd lacks:
- idle: a connection with no request in progress and no byte of the next one is closed after
  `idle_timeout` (aiohttp's keep-alive timer, armed at connect and after each response);
- header: once the first byte of a request arrives, its request line and headers must be complete
  within `header_timeout`, or the connection is closed.
Neither runs while a request is in progress: long polls (wait, events, logs --follow), uploads
(load, import) and hijacked streams (attach, exec start) are never cut.

Malformed HTTP (a bad request line, a header over the size limit) is the client's mistake, not ours:
it is answered 400 in Docker's JSON shape and logged at debug level, never with a traceback.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import http_exceptions, web
from aiohttp.web import BaseRequest, RequestHandler

from daemon.api.common import error_response

log = logging.getLogger(__name__)

# fixed words per parser error: aiohttp's own messages quote the client's bytes as Python reprs
_BAD_REQUEST_WORDS: list[tuple[type[Exception], str]] = [
    (http_exceptions.LineTooLong, "request line or header too long"),
    (http_exceptions.BadHttpMethod, "invalid method"),
    (http_exceptions.InvalidURLError, "invalid URL"),
    (http_exceptions.BadStatusLine, "invalid request line"),
    (http_exceptions.InvalidHeader, "invalid header"),
    (http_exceptions.PayloadEncodingError, "invalid body encoding"),
    (http_exceptions.BadHttpMessage, "malformed request line or headers"),
]


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float  # seconds from a request's first byte to the end of its headers
    idle_timeout: float  # seconds a connection may wait for its next request
    max_connections: int  # open connections at once; more wait in the listen backlog


def bad_request_words(exc: BaseException | None) -> str:
    for kind, words in _BAD_REQUEST_WORDS:
        if isinstance(exc, kind):
            return f"bad request: {words}"
    return "bad request"


class GuardedRequestHandler(RequestHandler):
    """aiohttp's RequestHandler plus the header timer; `on_close` is called once when it is gone."""

    def __init__(
        self,
        manager: web.Server,
        *,
        loop: asyncio.AbstractEventLoop,
        limits: ConnectionLimits,
        on_close: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=loop, keepalive_timeout=limits.idle_timeout, **kwargs)
        self._header_timeout = limits.header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._on_close: Callable[[], None] | None = on_close

    def _waiting_for_request(self) -> bool:
        # aiohttp's start() awaits this future only when every earlier request is done and nothing
        # else is queued: bytes arriving now begin the next request. (During a request they are its
        # body; after a hijack they never reach us.)
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def data_received(self, data: bytes) -> None:
        starts_request = self._header_timer is None and bool(data) and self._waiting_for_request()
        heads_before = self._request_count
        super().data_received(data)
        if self._request_count != heads_before:  # a request line and its headers are complete
            self._stop_header_timer()
        elif starts_request and not self._force_close:
            # The header timer takes over from the idle one: keep_alive() cancels aiohttp's timer,
            # which aiohttp arms again after the response.
            self.keep_alive(True)
            self._header_timer = self._loop.call_later(
                self._header_timeout, self._header_timeout_expired, heads_before
            )

    def _header_timeout_expired(self, heads_then: int) -> None:
        self._header_timer = None
        if self._request_count == heads_then:  # still no complete request head since the first byte
            log.debug("closed a connection: no request headers within %ss", self._header_timeout)
            self.force_close()

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_header_timer()
        try:
            super().connection_lost(exc)
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:  # our bug, not the client's: aiohttp logs it with its traceback
            super().handle_error(request, status, exc, message)
            words = "internal server error"
        else:
            log.debug("refused a malformed request: %s", exc or message)
            words = bad_request_words(exc)
        if request.writer.output_size > 0:  # the answer has begun: nothing more can be said
            raise ConnectionError("response already sent")
        resp = error_response(words, status)
        resp.force_close()
        return resp
