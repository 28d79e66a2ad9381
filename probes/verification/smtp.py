"""The SMTP open-relay check.

Raw command lines, not smtplib/aiosmtplib: those normalise addresses (a source route
`<@host:x@y>` goes out as `<@host>`, which a server answers as postmaster: a false "open").
The check never sends DATA: a 250/251 to RCPT for an outside recipient is the proof; the
session ends with RSET and QUIT.

Which acceptances count:
- *outside* variants name a recipient whose final domain is the canary's (plain, empty
  sender, IP-literal canary domain, source route through the target): a 250 is a relay.
- *local-trick* variants (percent hack, bang path, quoted local part) end in the target's own
  domain, which a server without recipient validation accepts for any local part. They only
  count when a control recipient, an unknown local user in the same form, was rejected: then
  the server treated the trick as "deliver elsewhere", not as a local mailbox.

Postfix delays every reply after 10 rejected commands in a session and hangs up at 20, so the
variants are spread over sessions of at most `REJECTS_PER_SESSION` rejections.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
import secrets
import ssl
from dataclasses import dataclass

from probes.verification.base import (
    ERROR,
    NOT_OPEN,
    OPEN,
    SMTP_RELAY,
    UNREACHABLE,
    CheckOutcome,
    ProbeConfig,
    ProbeFailure,
    Session,
    Transcript,
)

REJECTS_PER_SESSION = 8
MAX_REPLY_LINES = 64
_REPLY = re.compile(rb"^([2-5][0-9][0-9])([ -]|\r?\n|$)")

OUTSIDE = "outside"
CONTROL_IP = "control_ip"
CONTROL_BARE = "control_bare"
LOCAL_IP = "local_ip"
LOCAL_BARE = "local_bare"
_GATE = {LOCAL_IP: CONTROL_IP, LOCAL_BARE: CONTROL_BARE}


@dataclass(frozen=True)
class Variant:
    name: str
    sender: str
    recipient: str
    category: str


def address_literal(ip: str) -> str:
    parsed = ipaddress.ip_address(ip)
    return f"[IPv6:{parsed}]" if parsed.version == 6 else f"[{parsed}]"


def relay_variants(target_ip: str, config: ProbeConfig, token: str) -> list[Variant]:
    d = config.canary_domain
    here = address_literal(target_ip)
    local = f"sys-{token}"
    nouser = f"sys-nouser-{token}"
    sender = f"sys-probe-{token}@{d}"
    variants = [
        Variant("plain", sender, f"{local}@{d}", OUTSIDE),
        Variant("empty_sender", "", f"{local}@{d}", OUTSIDE),
    ]
    try:
        canary_literal = address_literal(config.canary_host)
    except ValueError:
        canary_literal = ""  # the canary is named, not numbered: no IP-literal variant
    if canary_literal:
        variants.append(Variant("ip_literal", f"sys-probe-{token}@{canary_literal}",
                                f"{local}@{canary_literal}", OUTSIDE))
    variants += [
        Variant("source_route", sender, f"@{here}:{local}@{d}", OUTSIDE),
        Variant("control_local", sender, f"{nouser}@{here}", CONTROL_IP),
        Variant("percent_hack", sender, f"{local}%{d}@{here}", LOCAL_IP),
        Variant("bang_path", sender, f"{d}!{local}@{here}", LOCAL_IP),
        Variant("quoted_local", sender, f'"{local}@{d}"@{here}', LOCAL_IP),
        Variant("control_bare", sender, nouser, CONTROL_BARE),
        Variant("percent_hack_bare", sender, f"{local}%{d}", LOCAL_BARE),
        Variant("bang_path_bare", sender, f"{d}!{local}", LOCAL_BARE),
        Variant("quoted_local_bare", sender, f'"{local}@{d}"', LOCAL_BARE),
    ]
    return variants


class _Closing(Exception):
    """The server said 421 (closing) or hung up: go on in a new session, if at all."""


class _TLSFailed(Exception):
    pass


class SMTPClient:
    def __init__(self, session: Session) -> None:
        self.s = session

    async def reply(self) -> tuple[int, str]:
        lines: list[bytes] = []
        while True:
            line = await self.s.readline("an SMTP reply")
            match = _REPLY.match(line)
            if not match:
                raise ProbeFailure(ERROR, f"not an SMTP reply: {line[:80]!r}")
            lines.append(line[4:].rstrip(b"\r\n"))
            if match.group(2) != b"-":
                code = int(match.group(1))
                return code, b"\n".join(lines).decode("latin-1")
            if len(lines) >= MAX_REPLY_LINES:
                raise ProbeFailure(ERROR, f"SMTP reply longer than {MAX_REPLY_LINES} lines")

    async def command(self, line: str) -> tuple[int, str]:
        await self.s.send(line.encode("latin-1") + b"\r\n")
        code, text = await self.reply()
        if code == 421:
            raise _Closing(f"421 {text}")
        return code, text


class RelayProbe:
    def __init__(self, ip: str, port: int, config: ProbeConfig, t: Transcript) -> None:
        self.ip = ip
        self.port = port
        self.config = config
        self.t = t
        self.token = secrets.token_hex(6)
        self.variants = relay_variants(ip, config, self.token)
        self.tried: dict[str, str] = {}  # variant name → "accepted"/"rejected …"/"skipped …"
        self.control: dict[str, bool] = {}  # control category → cleanly rejected (5xx)
        self.rejections = 0
        self.use_tls = True
        self.details: dict = {}
        self.open_variant = ""

    def pending(self) -> list[Variant]:
        return [v for v in self.variants if v.name not in self.tried]

    async def run(self) -> CheckOutcome:
        failure: ProbeFailure | None = None
        sessions = 0
        while self.pending() and not self.open_variant and sessions < 4:
            sessions += 1
            try:
                await self.session()
            except _TLSFailed as exc:
                self.t.note(f"STARTTLS failed ({exc}); retrying without TLS")
                self.details["tls"] = {"error": str(exc)[:200]}
                self.use_tls = False
            except _Closing as exc:
                self.t.note(f"server closed the session: {exc}")
                if not self.rejections:
                    failure = ProbeFailure(NOT_OPEN, f"server refused the session: {exc}")
                    break
            except ProbeFailure as exc:
                failure = exc
                break
        return self.outcome(failure)

    def outcome(self, failure: ProbeFailure | None) -> CheckOutcome:
        out = CheckOutcome(check=SMTP_RELAY, port=self.port, details=self.details)
        self.details["variants"] = self.tried
        if self.open_variant:
            out.verdict, out.variant = OPEN, self.open_variant
        elif failure is not None and (failure.verdict == NOT_OPEN or not self.rejections):
            out.verdict, out.error = failure.verdict, failure.message
            out.connect_failed = failure.stage == "connect"
        elif self.rejections:
            # Every relay attempt we could make was refused; a later hang-up or tarpit does
            # not turn that into "unreachable".
            out.verdict = NOT_OPEN
            if failure is not None:
                out.error = f"after {self.rejections} refusals: {failure.message}"
        else:
            out.verdict, out.error = ERROR, "no relay attempt could be made"
        return out

    async def session(self) -> None:
        session = Session(self.ip, self.port, self.config, self.t)
        client = SMTPClient(session)
        polite = True
        try:
            await session.connect()
            await self.greet(session, client)
            await self.try_variants(client)
        except ProbeFailure as exc:
            # A silent or babbling server gets no RSET/QUIT: it would only cost more timeouts.
            polite = exc.verdict == NOT_OPEN
            raise
        finally:
            if polite:
                await self.goodbye(session, client)
            else:
                await session.close()

    async def greet(self, session: Session, client: SMTPClient) -> None:
        code, text = await client.reply()
        if code != 220:
            raise ProbeFailure(NOT_OPEN, f"banner {code} {text[:200]}")
        self.details.setdefault("banner", text[:200])
        name = self.config.ehlo_name or f"probe.{self.config.canary_domain}"
        extensions = await self.hello(client, name)
        if self.use_tls and "STARTTLS" in extensions:
            code, text = await client.command("STARTTLS")
            if code != 220:
                self.t.note("STARTTLS offered but refused; going on in clear text")
                return
            await self.start_tls(session)
            await self.hello(client, name)

    async def hello(self, client: SMTPClient, name: str) -> set[str]:
        code, text = await client.command(f"EHLO {name}")
        if code == 250:
            return {line.split(" ", 1)[0].upper() for line in text.splitlines()[1:]}
        code, text = await client.command(f"HELO {name}")
        if code != 250:
            raise ProbeFailure(NOT_OPEN, f"HELO refused: {code} {text[:200]}")
        return set()

    async def start_tls(self, session: Session) -> None:
        # Relay tests judge the server's policy, not its certificate: verification is off on
        # purpose, and what was presented is recorded as evidence.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        assert session.writer is not None
        try:
            await asyncio.wait_for(
                session.writer.start_tls(context), self.config.timeout
            )
        except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as exc:
            session.writer = None  # the stream is unusable; don't send QUIT into it
            raise _TLSFailed(str(exc) or type(exc).__name__) from None
        tls = session.writer.get_extra_info("ssl_object")
        cert = tls.getpeercert(binary_form=True) if tls else None
        info = {
            "version": tls.version() if tls else "",
            "cipher": (tls.cipher() or ("",))[0] if tls else "",
            "certificate_sha256": hashlib.sha256(cert).hexdigest() if cert else "",
            "verified": False,
        }
        self.details["tls"] = info
        self.t.note(f"TLS {info['version']} {info['cipher']} (certificate not verified)")

    async def try_variants(self, client: SMTPClient) -> None:
        sender: str | None = None  # envelope sender of the open transaction
        session_rejects = 0
        for variant in self.pending():
            if session_rejects >= REJECTS_PER_SESSION:
                return  # fresh session before the server starts slowing us down
            gate = _GATE.get(variant.category)
            if gate is not None and not self.control.get(gate, False):
                self.tried[variant.name] = "skipped: control recipient was not refused"
                continue
            if variant.sender != sender:
                if sender is not None:
                    await client.command("RSET")
                code, text = await client.command(f"MAIL FROM:<{variant.sender}>")
                if code != 250:
                    self.rejections += 1
                    session_rejects += 1
                    sender = None
                    self.tried[variant.name] = f"sender refused: {code} {text[:120]}"
                    continue
                sender = variant.sender
            code, text = await client.command(f"RCPT TO:<{variant.recipient}>")
            accepted = code in (250, 251)
            if variant.category in (CONTROL_IP, CONTROL_BARE):
                self.control[variant.category] = 500 <= code < 600
                self.tried[variant.name] = f"{code}"
                if not accepted:
                    self.rejections += 1
                    session_rejects += 1
                continue
            if accepted:
                self.tried[variant.name] = f"accepted: {code} {text[:120]}"
                self.open_variant = variant.name
                self.details["accepted"] = {
                    "sender": variant.sender, "recipient": variant.recipient,
                    "reply": f"{code} {text[:200]}",
                }
                return
            self.rejections += 1
            session_rejects += 1
            self.tried[variant.name] = f"refused: {code} {text[:120]}"

    async def goodbye(self, session: Session, client: SMTPClient) -> None:
        if session.writer is not None and not session.writer.is_closing():
            # Never DATA: drop whatever envelope was accepted, then leave politely. Short
            # timeouts, because the verdict is already known.
            for line in ("RSET", "QUIT"):
                try:
                    await asyncio.wait_for(client.command(line), min(2.0, self.config.timeout))
                except (ProbeFailure, _Closing, TimeoutError, OSError):
                    break
        await session.close()


async def smtp_relay(ip: str, port: int, config: ProbeConfig, t: Transcript) -> CheckOutcome:
    probe = RelayProbe(ip, port, config, t)
    try:
        return await probe.run()
    except ProbeFailure as exc:
        if exc.verdict == UNREACHABLE and probe.open_variant:
            return probe.outcome(None)
        raise
