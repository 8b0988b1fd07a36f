"""The FIT-Connect connector's exception classes: flat, each with a message a person can act on.

Every error of this package is a :class:`MailboxError`; no exception of httpx or jwcrypto leaks past the
package boundary (they are chained with ``raise … from exc``).
"""


class MailboxError(Exception):
    """Base class: talking to the mailbox (FIT-Connect) or handling its content failed."""


class CryptoError(MailboxError):
    """A part does not decrypt, a signature does not verify, a key is unusable, or a token is malformed."""


class Unreachable(MailboxError):
    """The mailbox did not answer (connection refused, timeout, broken response). Retrying later may help."""


class ApiError(MailboxError):
    """The mailbox answered with an error status. ``status`` is the HTTP status, ``problem`` the
    RFC 7807 problem document it sent (or {})."""

    def __init__(self, message, status, problem=None):
        super().__init__(message)
        self.status = status
        self.problem = problem or {}


class AuthError(ApiError):
    """401/403: wrong client credentials, an expired token, or no right to this destination or case."""


class NotFoundError(ApiError):
    """404: no such destination, key, submission, attachment or case (for this client)."""


class Conflict(ApiError):
    """409: the request does not fit the submission's state, e.g. a second accept/reject event."""
