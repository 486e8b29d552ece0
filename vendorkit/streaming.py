"""``StreamingResponse``: an answer whose body is read as it arrives, for large exports.

``client.stream()`` sends the request through the whole pipeline (auth, re-auth, retries,
redirects) up to the answer's head; the body is then read chunk by chunk, never held
whole, and never retried once it has started (the caller has already seen part of it).
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Mapping

from ._constants import REQUEST_ID_HEADERS
from .response import Response
from .transport import _MAPPED, OpenResponse, map_transport_error

__all__ = ["StreamingResponse"]


class StreamingResponse:
    """The status and headers of an answer, and its body as an async iterator.

    Read it once, with :meth:`iter_bytes` or :meth:`iter_lines`, inside the ``async with``
    block: leaving the block releases the connection (closed if the body was not read to
    its end, so an abandoned export costs nothing more). A transport failure mid-body
    raises :class:`~vendorkit.TransportError`.
    """

    __slots__ = ("_closed", "_raw", "_rest", "_started", "elapsed", "headers", "method",
                 "status", "url")

    def __init__(self, response: Response) -> None:
        self.status = response.status
        self.method = response.method
        self.url = response.url
        self.headers: Mapping[str, str] = response.headers
        #: Seconds from sending the request to receiving the answer's head.
        self.elapsed = response.elapsed
        self._raw = response.raw if isinstance(response, OpenResponse) else None
        self._rest = response.content  # the body of an answer that was read whole
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<StreamingResponse {self.status} {self.method} {self.url}>"

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def request_id(self) -> str | None:
        """The server's request id, when it sends one (quote it to the vendor's support)."""
        for name in REQUEST_ID_HEADERS:
            value = self.headers.get(name)
            if value:
                return value
        return None

    async def iter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (``chunk_size``: in chunks of that size, the
        last one shorter)."""
        if self._closed:
            raise RuntimeError("this StreamingResponse is closed: read it inside its block")
        if self._started:
            raise RuntimeError("the body of a StreamingResponse can be read only once")
        self._started = True
        raw = self._raw
        if raw is None:
            if self._rest:
                yield self._rest
            return
        content = raw.content
        chunks = content.iter_any() if chunk_size is None else content.iter_chunked(chunk_size)
        while True:
            try:
                chunk = await anext(chunks, None)
            except _MAPPED as exc:
                error = map_transport_error(exc, self.method, self.url)
            else:
                if chunk is None:
                    return
                yield chunk
                continue
            raise error  # no __context__: aiohttp's exceptions hold the request's headers

    async def iter_lines(self) -> AsyncIterator[str]:
        """The body as lines of UTF-8 text, without their line endings (``\\n``, ``\\r\\n``)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        partial: list[str] = []  # the line being received, across chunks without a newline
        async for chunk in self.iter_bytes():
            text = decoder.decode(chunk)
            if "\n" not in text:
                partial.append(text)
                continue
            lines = text.split("\n")
            partial.append(lines[0])
            lines[0] = "".join(partial)
            partial = [lines.pop()]
            for line in lines:
                yield line.removesuffix("\r")
        last = "".join(partial) + decoder.decode(b"", final=True)
        if last:
            yield last.removesuffix("\r")

    async def aclose(self) -> None:
        """Release the connection: back to the pool if the body was read to its end, else
        closed. ``client.stream()`` calls it when its block exits."""
        raw, self._raw = self._raw, None
        self._closed = True
        if raw is not None:
            raw.release()
            await raw.wait_for_close()
