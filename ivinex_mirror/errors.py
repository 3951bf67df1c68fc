"""The exceptions of the Ivinex client: one per row of the API's error table.

Each carries a message that tells the user what to do next; the CLI prints it
as it is.
"""


class IvinexError(Exception):
    """Something went wrong talking to an Ivinex instance."""

    def __init__(self, message, *, call=None, status=None):
        super().__init__(message)
        self.call = call
        self.status = status


class AuthenticationFailed(IvinexError):
    """401: the username or password was refused."""


class PermissionDenied(IvinexError):
    """403, or a 200 whose body reports a permission error."""

    def __init__(self, message, *, call=None, status=None, tab=None):
        super().__init__(message, call=call, status=status)
        self.tab = tab


class NotFound(IvinexError):
    """404: the tab or the call does not exist on this instance."""


class RateLimited(IvinexError):
    """429 that kept coming after every retry."""


class ServerUnavailable(IvinexError):
    """5xx, a reset connection or a timeout that outlasted the retries."""


class MalformedResponse(IvinexError):
    """A 200 whose body is not the JSON the call should answer with."""


class ApiError(IvinexError):
    """A 200 whose body reports an error that is not about permissions."""
