"""Typed errors of the seccomp package; the container service maps them to HTTP statuses."""


class SeccompError(Exception):
    """Base class: the message is meant for the API client."""


class ProfileError(SeccompError):
    """Not a valid profile in Docker's JSON format, or one libseccomp refuses (400)."""


class ProfileUnsupported(SeccompError):
    """A valid profile asking for what pydockerd does not do, such as user notification (501)."""


class SeccompUnavailable(SeccompError):
    """No seccomp filters here: libseccomp is missing or the kernel lacks CONFIG_SECCOMP_FILTER."""
