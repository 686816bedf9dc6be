"""Every error the library raises, under one root.

Catch :class:`BalancesError` to handle anything from this package. Validation
errors are also :class:`ValueError`, so code that already guards parsing with
``except ValueError`` keeps working. The tree::

    BalancesError
    ├── ValidationError (ValueError)        bad input; the message says what is accepted
    │   ├── InvalidAddressError             not a valid Stacks principal
    │   ├── InvalidTokenIdError             not `stx`, ADDR.name or ADDR.name::asset
    │   ├── InvalidAmountError              not an integer in 0 <= x < 2**128
    │   ├── InvalidPeriodError              unknown period or bad from/to range
    │   ├── InvalidGranularityError         unknown bucket size
    │   ├── InvalidBlobKeyError             a key that could escape or collide in a store
    │   ├── RequestTooLargeError            a bulk request over the configured bound
    │   ├── InvalidDeliveryError            a pushed block (Chainhook, node) of the wrong shape
    │   ├── InvalidSignatureError           a webhook delivery whose signature does not verify
    │   ├── C32Error                        c32 / c32check text that does not decode
    │   └── ClarityError                    Clarity values (SIP-005)
    │       ├── ClarityValueError           a value that cannot exist (u128 overflow, ...)
    │       └── ClarityDecodeError          bytes that are not a serialized value
    ├── ConfigError (ValueError)            a setting or environment variable is invalid
    ├── NotFoundError                       something asked for does not exist
    │   ├── BalanceNotFoundError            never read: unknown, which is not zero
    │   ├── TokenNotFoundError              no such token contract
    │   └── WebhookNotFoundError            no webhook subscription with that id
    ├── ChainError                          talking to the Stacks API or node failed
    │   ├── RateLimitedError                429; carries ``retry_after`` seconds
    │   ├── ChainUnavailableError           5xx, timeouts, connection failures
    │   ├── EndpointGoneError               404/410 on a route this API no longer serves
    │   ├── ChainRejectedError              another 4xx: the request (our caller's input) was bad
    │   ├── ContractNotFoundError           the contract does not exist (also NotFoundError)
    │   ├── ContractCallError               call-read answered okay:false; carries ``cause``
    │   └── MalformedResponseError          an answer that does not have the documented shape
    ├── PriceSourceError                    the USD price source failed or answered nonsense
    ├── IngestError                         block ingestion cannot go on from where it is
    ├── FeedGoneError                       a change-feed position no longer kept; re-read
    ├── BehindBlockError                    a bulk item that cannot be had as of the answer's block
    ├── FeedUnavailableError                this service keeps no change feed
    └── BlobStoreError                      the blob store failed
        ├── BlobNotFoundError               no blob under that key (also NotFoundError)
        ├── PreconditionFailedError         a conditional write lost a race
        ├── UnsupportedConditionError       the backend cannot honour a write condition
        ├── BlobBackendError                transport or service failure of the backend
        ├── CorruptBlobError                a stored blob that does not decode (never overwritten)
        └── WriteConflictError              conditional writes kept losing races; gave up
"""

from __future__ import annotations

#: How much of a bad input an error message quotes.
QUOTE_LIMIT = 100


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, cut to about ``limit`` characters: an error message quotes
    enough of a bad input to recognise it, never a 100 KB body."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}..."
    text = repr(value)
    return text if len(text) <= limit + 2 else f"{text[:limit]}..."


class BalancesError(Exception):
    """Root of every error raised by :mod:`balances`."""


# --- bad input -------------------------------------------------------------


class ValidationError(BalancesError, ValueError):
    """Input that was rejected; the message says what was wrong and what is accepted."""


class InvalidAddressError(ValidationError):
    """Text that is not a valid standard or contract principal."""


class InvalidTokenIdError(ValidationError):
    """Text that is not a token id (`stx`, ``ADDR.name`` or ``ADDR.name::asset``)."""


class InvalidAmountError(ValidationError):
    """An amount outside ``0 <= x < 2**128`` or not an integer."""


class InvalidPeriodError(ValidationError):
    """An unknown period name or an invalid explicit time range."""


class InvalidGranularityError(ValidationError):
    """An unknown granularity."""


class InvalidBlobKeyError(ValidationError):
    """A blob key that is empty, absolute, has ``..`` segments or unsafe characters."""


class RequestTooLargeError(ValidationError):
    """A bulk request over the configured bound (addresses x tokens)."""


class InvalidDeliveryError(ValidationError):
    """A pushed delivery (a Chainhook payload, a node's event) that does not have the
    documented shape; nothing of it was applied."""


class InvalidSignatureError(ValidationError):
    """A webhook delivery whose signature is missing, wrong or too old (a replay)."""


class C32Error(ValidationError):
    """Text that is not valid c32 or c32check."""


class ClarityError(ValidationError):
    """Base for Clarity value errors."""


class ClarityValueError(ClarityError):
    """A Clarity value that cannot be represented (out of range, wrong type, ...)."""


class ClarityDecodeError(ClarityError):
    """Bytes that are not a valid serialized Clarity value."""


class ConfigError(BalancesError, ValueError):
    """A configuration value (often an environment variable) is invalid."""


# --- missing things --------------------------------------------------------


class NotFoundError(BalancesError):
    """Something that was asked for does not exist."""


class BalanceNotFoundError(NotFoundError):
    """No balance is known: it was never read. Unknown is not zero."""


class TokenNotFoundError(NotFoundError):
    """No such token contract."""


class WebhookNotFoundError(NotFoundError):
    """No webhook subscription has that id."""


# --- the chain -------------------------------------------------------------


class ChainError(BalancesError):
    """A request to the Stacks API or node failed."""


class RateLimitedError(ChainError):
    """The API answered 429; ``retry_after`` is its hint in seconds, if it sent one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChainUnavailableError(ChainError):
    """The API failed (5xx), timed out or could not be reached."""


class EndpointGoneError(ChainError):
    """The route answered 404 or 410: this API no longer serves it."""


class ChainRejectedError(ChainError):
    """The API refused the request as bad (a 4xx other than 404, 410 and 429): what
    we asked for, from the caller's input, is not something the chain answers."""


class ContractNotFoundError(ChainError, NotFoundError):
    """The contract does not exist on this network."""


class ContractCallError(ChainError):
    """A read-only call failed; ``cause`` is the node's reason."""

    def __init__(self, message: str, cause: str | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class MalformedResponseError(ChainError):
    """An answer that is not JSON or lacks a documented field."""


class IngestError(BalancesError):
    """Block ingestion cannot continue from where it stands (the message says why and
    what it falls back to)."""


class FeedGoneError(BalancesError):
    """A change-feed position the feed no longer holds (past retention, or lost in a
    writer's crash): the consumer re-reads the snapshot and resumes from ``resume_after``."""

    def __init__(self, message: str, *, resume_after: int) -> None:
        super().__init__(message)
        self.resume_after = resume_after


class BehindBlockError(BalancesError):
    """A balance of a bulk answer read at an older block than the answer's, that could
    not be re-read as of the answer's block (it is left out, never mixed in)."""


class FeedUnavailableError(BalancesError):
    """This service keeps no change feed (the spec layout, or the feed is disabled)."""


class PriceSourceError(BalancesError):
    """The USD price source failed, or answered something that is not a price."""


# --- blob storage ----------------------------------------------------------


class BlobStoreError(BalancesError):
    """A blob store operation failed; ``key`` names the blob when one is to blame."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        #: Set once a storage health record has counted this error (it passes
        #: through several layers that each may report it).
        self.reported = False


class BlobNotFoundError(BlobStoreError, NotFoundError):
    """No blob under that key."""


class PreconditionFailedError(BlobStoreError):
    """A conditional write lost a race: the blob exists, or its etag changed."""


class UnsupportedConditionError(BlobStoreError):
    """The backend cannot honour the requested write condition."""


class BlobBackendError(BlobStoreError):
    """The backend's transport or service failed."""


class CorruptBlobError(BlobStoreError):
    """A stored blob that does not decode; it is reported, never silently replaced.

    ``raw`` holds the stored bytes when the backend itself could not frame them (a
    local file with a damaged header), so that repair can still quarantine them.
    """

    def __init__(self, message: str, *, key: str | None = None, raw: bytes | None = None) -> None:
        super().__init__(message, key=key)
        self.raw = raw


class WriteConflictError(BlobStoreError):
    """A read-modify-write lost its conditional write every time it retried."""
