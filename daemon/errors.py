"""One error hierarchy for the daemon; daemon.api.app maps it to HTTP status codes.

Messages follow Docker's words, because clients (the docker CLI, docker-py) match on them.
"""


class DaemonError(Exception):
    """Base class: an error with a message meant for the API client."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(DaemonError):
    status = 400


class Forbidden(DaemonError):
    status = 403


class NotFound(DaemonError):
    status = 404


class Conflict(DaemonError):
    status = 409


class NotModified(DaemonError):
    status = 304


class SystemError_(DaemonError):
    """A failure on the daemon's side (a runtime that could not start a process, say)."""

    status = 500


class NotImplementedYet(DaemonError):
    status = 501


class Unavailable(DaemonError):
    status = 503


def no_such_container(ref: str) -> NotFound:
    return NotFound(f"No such container: {ref}")


def no_such_image(ref: str) -> NotFound:
    return NotFound(f"No such image: {ref}")


def no_such_exec(ref: str) -> NotFound:
    return NotFound(f"No such exec instance: {ref}")


def error_words(e: BaseException) -> str:
    """An error's message for a client: an OSError's own words, without Python's "[Errno N]"."""
    return e.strerror if isinstance(e, OSError) and e.strerror else str(e)
