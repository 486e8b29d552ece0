"""``CallOptions``: what a ``client.with_options()`` view changes for its own calls.

A view shares its client's session (token, store, limiter, connections) and hands the
pipeline one of these with each call, so one slow export gets a long timeout without a
second client. Everything here is computed when the view is made, not per call.
"""

from __future__ import annotations

from typing import TypedDict

import aiohttp
import attrs

from .config import Timeouts
from .errors import ConfigurationError
from .retry import RetryPolicy
from .transport import client_timeout

__all__ = ["CallOptions", "CallOverrides"]


class CallOverrides(TypedDict, total=False):
    """The keyword arguments of ``with_options()``; one left out keeps the client's."""

    #: Seconds for the whole call (for a stream: for its head, then for each read); None:
    #: no limit.
    timeout: float | None
    connect_timeout: float | None
    retry: RetryPolicy
    #: False: these calls skip the client's rate limiter (an endpoint outside the quota).
    rate_limit: bool


@attrs.frozen(slots=True)
class CallOptions:
    """Per-call settings the pipeline reads; None keeps the session's own."""

    timeouts: Timeouts | None = None
    retry: RetryPolicy | None = None
    #: False: the call leaves out the rate-limiting layer.
    rate_limit: bool | None = None
    #: aiohttp's timeouts for a call and for a stream, derived from ``timeouts`` once.
    call_timeout: aiohttp.ClientTimeout | None = attrs.field(init=False, repr=False, eq=False)
    stream_timeout: aiohttp.ClientTimeout | None = attrs.field(init=False, repr=False, eq=False)

    @call_timeout.default
    def _call_timeout(self) -> aiohttp.ClientTimeout | None:
        return None if self.timeouts is None else client_timeout(self.timeouts, stream=False)

    @stream_timeout.default
    def _stream_timeout(self) -> aiohttp.ClientTimeout | None:
        return None if self.timeouts is None else client_timeout(self.timeouts, stream=True)

    def merged(
        self, overrides: CallOverrides, *, session_timeouts: Timeouts, limited: bool
    ) -> CallOptions:
        """These options with ``overrides`` applied, checked here so that a bad one fails at
        ``with_options()``, naming the argument. ``limited``: the session has a limiter."""
        retry = overrides.get("retry", self.retry)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigurationError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        rate_limit = overrides.get("rate_limit", self.rate_limit)
        if rate_limit is not None and not isinstance(rate_limit, bool):
            raise ConfigurationError("with_options(rate_limit=) takes True or False; a "
                                     "RateLimit is set on the client, shared by its views")
        if rate_limit and not limited:
            raise ConfigurationError("rate_limit=True: this client was built with "
                                     "rate_limit=False, so it has no limiter to share")
        timeouts = self.timeouts
        if "timeout" in overrides or "connect_timeout" in overrides:
            base = timeouts or session_timeouts
            timeouts = Timeouts(
                timeout=overrides.get("timeout", base.total),
                connect_timeout=overrides.get("connect_timeout", base.connect),
                logout_timeout=base.logout,
            )
        return CallOptions(timeouts=timeouts, retry=retry, rate_limit=rate_limit)
