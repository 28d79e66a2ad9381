"""What every check shares: configuration, the outcome, the transcript, bounded I/O.

No Django here: the checks are plain asyncio code that can be run (and tested, and benchmarked)
without a database. The only network entry point is `Session.connect`, which goes through the
outbound seam (`campaign.outbound.open_connection`) so the address policy is never bypassed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from campaign import outbound

OPEN = "open"
NOT_OPEN = "not_open"
UNREACHABLE = "unreachable"
ERROR = "error"
VERDICTS = (OPEN, NOT_OPEN, UNREACHABLE, ERROR)


def overall_verdict(verdicts: Iterable[str]) -> str:
    """One verdict from several (a host's checks, a check's attempts): open if any was open;
    unreachable only if every one was (silence everywhere); else not_open if any check got a
    refusal; else error. No verdicts at all is an error: nothing was learnt."""
    seen = set(verdicts)
    if OPEN in seen:
        return OPEN
    if seen == {UNREACHABLE}:
        return UNREACHABLE
    if NOT_OPEN in seen:
        return NOT_OPEN
    return ERROR


SMTP_RELAY = "smtp_relay"
HTTP_PROXY = "http_proxy"
SOCKS4 = "socks4"
SOCKS5 = "socks5"
CHECKS = (SMTP_RELAY, HTTP_PROXY, SOCKS4, SOCKS5)

# Limits that keep a hostile server from costing us memory: one protocol line, one response
# (headers plus the bit of body the canary proof sits in), and the stored transcript.
MAX_LINE = 4096
MAX_RESPONSE = 64 * 1024
MAX_TRANSCRIPT = 16 * 1024
MAX_TRANSCRIPT_LINE = 400


@dataclass(frozen=True)
class ProbeConfig:
    timeout: float = 5.0
    canary_domain: str = "canary.invalid"
    canary_host: str = ""
    canary_port: int = 0
    canary_key: bytes = b""
    # The whole check (all its sessions) must finish within this many timeouts, so a server
    # that drips one byte just before each read timeout cannot hold a slot for minutes.
    check_budget: float = 6.0
    ehlo_name: str = ""

    @property
    def has_canary(self) -> bool:
        return bool(self.canary_host and self.canary_port and self.canary_key)

    @property
    def deadline(self) -> float:
        return self.timeout * self.check_budget


def canary_proof(key: bytes, nonce: str) -> str:
    """The answer only the real canary can give for `nonce`.

    The probe sends a fresh random nonce; the canary answers with an HMAC of it under a key the
    proxy never sees. A proxy (or honeypot) that echoes the request back, or invents a page,
    therefore cannot produce the proof: only a proxy that really reached the canary can.
    """
    return hmac.new(key, nonce.encode("ascii"), hashlib.sha256).hexdigest()[:32]


@dataclass
class CheckOutcome:
    check: str
    port: int
    verdict: str = ERROR
    variant: str = ""
    error: str = ""
    transcript: str = ""
    started_at: float = 0.0  # time.time()
    duration_ms: int = 0
    details: dict = field(default_factory=dict)
    # Nothing accepted the TCP connection: other checks on this port need not knock again.
    connect_failed: bool = False


class ProbeFailure(Exception):
    """Ends a check early with a verdict (unreachable on timeouts, error on garbage)."""

    def __init__(self, verdict: str, message: str, *, stage: str = "") -> None:
        super().__init__(message)
        self.verdict = verdict
        self.message = message
        self.stage = stage  # "connect" when nothing could even be reached


class Transcript:
    """Client/server exchange, escaped and capped so a chatty server cannot bloat the row."""

    def __init__(self, limit: int = MAX_TRANSCRIPT) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.truncated = False
        self.t0 = time.monotonic()

    def add(self, who: str, data: bytes | str) -> None:
        if self.truncated:
            return
        text = data if isinstance(data, str) else data.decode("latin-1")
        for raw in text.splitlines() or [""]:
            line = raw.encode("unicode_escape").decode("ascii")
            if len(line) > MAX_TRANSCRIPT_LINE:
                line = line[:MAX_TRANSCRIPT_LINE] + f"… [{len(line)} chars]"
            stamp = f"{(time.monotonic() - self.t0) * 1000:7.0f}ms"
            entry = f"{stamp} {who} {line}"
            if self.size + len(entry) > self.limit:
                self.parts.append("… [transcript truncated]")
                self.truncated = True
                return
            self.parts.append(entry)
            self.size += len(entry) + 1

    def client(self, data: bytes | str) -> None:
        self.add("C:", data)

    def server(self, data: bytes | str) -> None:
        self.add("S:", data)

    def note(self, text: str) -> None:
        self.add("*", text)

    def text(self) -> str:
        return "\n".join(self.parts)


class Session:
    """One TCP connection to the target, every read bounded in time and size."""

    def __init__(self, ip: str, port: int, config: ProbeConfig, transcript: Transcript) -> None:
        self.ip = ip
        self.port = port
        self.config = config
        self.t = transcript
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.received = 0

    async def connect(self) -> None:
        self.t.note(f"connect {self.ip}:{self.port}")
        try:
            self.reader, self.writer = await outbound.open_connection(
                self.ip, self.port, timeout=self.config.timeout, limit=MAX_LINE
            )
        except TimeoutError:
            raise ProbeFailure(UNREACHABLE, "connect timed out", stage="connect") from None
        except ConnectionRefusedError:
            raise ProbeFailure(UNREACHABLE, "connection refused", stage="connect") from None
        except OSError as exc:
            raise ProbeFailure(
                UNREACHABLE, f"connect failed: {exc.strerror or exc}", stage="connect"
            ) from None

    async def send(self, data: bytes, *, show: bytes | str | None = None) -> None:
        assert self.writer is not None
        self.t.client(data if show is None else show)
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.config.timeout)
        except TimeoutError:
            raise ProbeFailure(UNREACHABLE, "send timed out") from None
        except OSError as exc:
            raise ProbeFailure(ERROR, f"connection lost while sending: {exc}") from None

    async def _guarded(self, what: str, coro: Awaitable[bytes]) -> bytes:
        try:
            data = await asyncio.wait_for(coro, self.config.timeout)
        except TimeoutError:
            self.t.note(f"no {what} within {self.config.timeout:g}s")
            raise ProbeFailure(UNREACHABLE, f"timed out waiting for {what}") from None
        except asyncio.LimitOverrunError:
            raise ProbeFailure(ERROR, f"{what} longer than {MAX_LINE} bytes") from None
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                self.t.server(exc.partial)
            raise ProbeFailure(
                ERROR if (self.received or exc.partial) else UNREACHABLE,
                f"connection closed by the server while waiting for {what}",
            ) from None
        except ConnectionResetError:
            raise ProbeFailure(
                ERROR if self.received else UNREACHABLE,
                f"connection closed by the server (reset) while waiting for {what}",
            ) from None
        except ValueError:  # StreamReader's "separator is not found, chunk exceed the limit"
            raise ProbeFailure(ERROR, f"{what} longer than {MAX_LINE} bytes") from None
        except OSError as exc:
            raise ProbeFailure(ERROR, f"connection error: {exc}") from None
        self.received += len(data)
        if self.received > MAX_RESPONSE:
            raise ProbeFailure(ERROR, f"server sent more than {MAX_RESPONSE} bytes")
        return data

    async def readline(self, what: str = "a reply line") -> bytes:
        assert self.reader is not None
        line = await self._guarded(what, self.reader.readuntil(b"\n"))
        self.t.server(line.rstrip(b"\r\n"))
        return line

    async def readexactly(self, n: int, what: str) -> bytes:
        assert self.reader is not None
        data = await self._guarded(what, self.reader.readexactly(n))
        self.t.server(data.hex(" ") if not data.isascii() or b"\0" in data else data)
        return data

    async def read_until_close(self, limit: int = MAX_RESPONSE, what: str = "a response") -> bytes:
        """Read until EOF or `limit` bytes; a timeout after some data just ends the read."""
        assert self.reader is not None
        chunks: list[bytes] = []
        total = 0
        while total < limit:
            try:
                chunk = await asyncio.wait_for(
                    self.reader.read(min(8192, limit - total)), self.config.timeout
                )
            except TimeoutError:
                if total:
                    break
                self.t.note(f"no {what} within {self.config.timeout:g}s")
                raise ProbeFailure(UNREACHABLE, f"timed out waiting for {what}") from None
            except OSError as exc:
                if total:
                    break
                raise ProbeFailure(ERROR, f"connection error: {exc}") from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        data = b"".join(chunks)
        self.received += len(data)
        self.t.server(data[:2048] if len(data) <= 2048 else data[:2048] + b"...")
        return data

    async def close(self) -> None:
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        try:
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        except (OSError, TimeoutError, asyncio.CancelledError):
            pass
        except Exception:  # noqa: S110 - closing a broken TLS stream may raise anything
            pass


CheckFn = Callable[[str, int, ProbeConfig, Transcript], Awaitable[CheckOutcome]]


async def run_check(
    check: str, fn: CheckFn, ip: str, port: int, config: ProbeConfig
) -> CheckOutcome:
    """Run one check under its overall deadline, turning every failure into a verdict."""
    transcript = Transcript()
    started = time.time()
    t0 = time.monotonic()
    try:
        async with asyncio.timeout(config.deadline):
            outcome = await fn(ip, port, config, transcript)
    except ProbeFailure as exc:
        outcome = CheckOutcome(check=check, port=port, verdict=exc.verdict, error=exc.message,
                               connect_failed=exc.stage == "connect")
    except TimeoutError:
        transcript.note(f"check exceeded its {config.deadline:g}s budget")
        outcome = CheckOutcome(
            check=check, port=port, verdict=UNREACHABLE,
            error=f"check did not finish within {config.deadline:g}s",
        )
    except outbound.TargetRefused:
        raise
    except Exception as exc:  # a bug or an exotic socket error must not kill the whole run
        transcript.note(f"unexpected {type(exc).__name__}: {exc}")
        outcome = CheckOutcome(check=check, port=port, verdict=ERROR, error=f"{exc!r}"[:500])
    outcome.started_at = started
    outcome.duration_ms = int((time.monotonic() - t0) * 1000)
    outcome.transcript = transcript.text()
    return outcome
