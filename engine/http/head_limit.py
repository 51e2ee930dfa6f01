"""A bound on a request's line and headers under httptools.

uvicorn's h11 parser refuses a head larger than `h11_max_incomplete_event_size`; its httptools
parser keeps whatever arrives until the blank line, so one client sending endless headers on a
few connections could take all the server's memory. This protocol counts the bytes of each
head as they arrive and answers 431 `headers_too_large` (and closes) past the same setting,
which `serving_options` sets from `http.max_header_bytes` for either parser.

The count is per `data_received` chunk, before the parser sees it: a head is refused within
one read (at most the transport's read size) of the bound, before httptools buffers it.
"""

from __future__ import annotations

from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_HEAD_BYTES = 32_768


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_head_bytes = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_HEAD_BYTES
        self._head_bytes = 0  # of the head being read
        self._reading_head = True
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._reading_head:
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head_bytes:
                self._refuse_head()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next request on this keep-alive connection starts a new head. Bytes of it that
        # came in the same chunk as this body's end were not counted: at most one read more.
        self._reading_head, self._head_bytes = True, 0

    def _refuse_head(self) -> None:
        body = orjson.dumps({"error": "headers_too_large",
                             "message": f"the request line and headers must fit in {self._max_head_bytes} bytes"})
        self.transport.write(b"".join([
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            b"content-type: application/json\r\n",
            b"content-length: ", str(len(body)).encode("ascii"), b"\r\n",
            b"cache-control: no-store\r\n",
            b"connection: close\r\n\r\n", body,
        ]))
        self._refused = True
        self.transport.close()
