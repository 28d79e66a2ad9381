"""The canary: the service suspected proxies are asked to reach.

Protocol: a probe picks a random nonce and asks (through the proxy, or over a CONNECT/SOCKS
tunnel) for `http://CANARY/t/<nonce>`. The canary answers `200` with the body
`sys-canary proof=<HMAC(key, nonce)>`. The key is derived from the project's SECRET_KEY and
never leaves the probe and the canary, so a proxy that echoes the request or makes up a page
cannot produce the proof; only one that really carried our request to the canary can.

Any path other than /t/<nonce> gets 404, and the server keeps no state, so it can run
anywhere reachable from the Internet (`manage.py run_canary --bind 0.0.0.0:8000`).
"""

from __future__ import annotations

import asyncio
import logging
import re

from probes.verification.base import canary_proof

log = logging.getLogger(__name__)

_REQUEST = re.compile(rb"^(GET|HEAD) (?:https?://[^/\s]+)?/t/([0-9a-f]{8,64}) HTTP/1\.[01]\r?\n")
MAX_HEAD = 8192
READ_TIMEOUT = 10.0


def answer(key: bytes, head: bytes) -> bytes:
    match = _REQUEST.match(head)
    if not match:
        body = b"not found\n"
        status = b"404 Not Found"
    else:
        body = f"sys-canary proof={canary_proof(key, match.group(2).decode())}\n".encode()
        status = b"200 OK"
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        + (body if not head.startswith(b"HEAD ") else b"")
    )


class CanaryServer:
    def __init__(self, key: bytes, host: str = "127.0.0.1", port: int = 0) -> None:
        if not key:
            raise ValueError("the canary needs a key")
        self.key = key
        self.host = host
        self.port = port
        self.server: asyncio.Server | None = None
        self.served = 0

    async def start(self) -> CanaryServer:
        self.server = await asyncio.start_server(self.handle, self.host, self.port, limit=MAX_HEAD)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def serve_forever(self) -> None:
        if self.server is None:
            await self.start()
        assert self.server is not None
        await self.server.serve_forever()

    @staticmethod
    async def read_head(reader: asyncio.StreamReader) -> bytes:
        # Read the whole head before answering: closing with unread request bytes would make
        # the kernel send RST, and a proxy may then drop our answer on the floor.
        head = await reader.readuntil(b"\n")
        size = len(head)
        while size < MAX_HEAD:
            line = await reader.readuntil(b"\n")
            size += len(line)
            if line in (b"\r\n", b"\n"):
                break
        return head

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(self.read_head(reader), READ_TIMEOUT)
            writer.write(answer(self.key, head))
            await asyncio.wait_for(writer.drain(), READ_TIMEOUT)
            self.served += 1
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError, OSError):
            pass
        finally:
            writer.close()
