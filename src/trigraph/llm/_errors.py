"""``LLMError``, and the one place where httpx's errors become it.

The hierarchy::

    TrigraphError
    └── LLMError        the server said no (HTTP 4xx/5xx), the connection
                        failed or timed out, or the stream broke off

httpx exceptions never leave ``trigraph.llm``: :func:`translate` turns each
into an ``LLMError`` raised ``from`` it, so the original stays reachable as
``__cause__``. ``trio.Cancelled`` is never caught or translated.
"""

from __future__ import annotations

from typing import Final

import httpx

from .._exceptions import TrigraphError
from .._util import final

__all__ = ["LLMError", "translate"]

_HINTS: Final = {
    400: "the server rejected the request; check the messages and the parameters",
    401: "check api_key= or the OPENAI_API_KEY environment variable",
    403: "the API key may not use this model",
    404: "check base_url= (it usually ends in /v1) and model=",
    429: "rate limited; a node RetryPolicy retries it after a pause",
}


_TIMEOUT_KINDS: Final = {
    httpx.ConnectTimeout: "connect ",
    httpx.ReadTimeout: "read ",
    httpx.WriteTimeout: "write ",
    httpx.PoolTimeout: "pool ",
}


@final
class LLMError(TrigraphError):
    """A chat request failed: an HTTP error status, a failed or timed-out
    connection, or a stream that broke off before ``data: [DONE]``.

    Attributes:
      status: the HTTP status of an error response; ``None`` when the failure
        was not an error status (connection, timeout, a broken stream).
      message: what the server said (the ``error.message`` of an
        OpenAI-style error body, else the start of the body), or ``None``.
      retryable: ``True`` for 429, 5xx, connection errors, timeouts and
        broken streams, where trying again may succeed; ``False`` otherwise.
        The default node ``RetryPolicy`` reads it.

    Example:
      >>> err = LLMError("HTTP 401 from http://h/v1/chat/completions", status=401,
      ...                message="Invalid API key", retryable=False)
      >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
      HTTP 401 from http://h/v1/chat/completions: Invalid API key
      (check api_key= or the OPENAI_API_KEY environment variable)

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        problem: str,
        *,
        status: int | None = None,
        message: str | None = None,
        retryable: bool = False,
    ) -> None:
        text = problem if message is None else f"{problem}: {message}"
        hint = _HINTS.get(status) if status is not None else None
        if hint is not None:
            text = f"{text} ({hint})"
        super().__init__(text)
        self.status = status
        self.message = message
        self.retryable = retryable


def status_retryable(status: int) -> bool:
    """Whether an HTTP error status is worth a retry: 429 and 5xx."""
    return status == 429 or status >= 500


def translate(exc: httpx.RequestError, url: str) -> LLMError:
    """The ``LLMError`` for an httpx error met while talking to *url*.

    Timeouts, network errors and a peer that broke the protocol (closed the
    connection mid-body) are retryable; a bad URL or a local misuse is not.
    """
    if isinstance(exc, httpx.TimeoutException):
        kind = _TIMEOUT_KINDS.get(type(exc), "")
        return LLMError(
            f"{url} timed out ({kind}timeout); pass a larger timeout= to ChatModel "
            "or to the call, or timeout=None for none",
            retryable=True,
        )
    retryable = isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError))
    return LLMError(
        f"request to {url} failed ({type(exc).__name__})",
        message=str(exc) or None,
        retryable=retryable,
    )
