"""What a message that came back to us is: a bounce, a complaint, an auto-reply or a reply.

Plain Python, no Django: it reads one RFC 5322 message and says what it is and what it names
(the bounced recipients with their DSN status, the Message-IDs and VERP tokens that tie it to
a letter). letters.inbound.receive matches it to a letter and acts on it.

* complaint: an RFC 5965 ARF report (`multipart/report; report-type=feedback-report`).
* bounce: an RFC 3464 DSN (`message/delivery-status`, per recipient `Action`, `Status`,
  `Diagnostic-Code`), else one of the non-standard formats of Exchange, qmail, Exim, Yahoo,
  Postfix's old ones… as flufl.bounce (Mailman's bounce detectors) reads them, but only from
  a sender or subject that says it is a delivery report: a person quoting a bounce is not one.
* auto_reply: RFC 3834 `Auto-Submitted` (anything but `no`), the headers vacation and
  out-of-office responders set, or an out-of-office subject in one of the operation's
  languages.
* reply: anything else (whether it answers a letter is the matcher's business).

Permanent or not, per bounced recipient: an address or domain that does not exist or has
moved (5.1.x, 5.4.4, a disabled mailbox) is permanent and will be suppressed; a full mailbox,
a filter or policy refusal, an expired delivery or any 4.x.x is not (retry, then fall back).
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import Message

from flufl.bounce import all_failures

from letters import mailtext
from probes.contacts.records import clean_email

BOUNCE, COMPLAINT, AUTO_REPLY, REPLY, UNMATCHED = (
    "bounce", "complaint", "auto_reply", "reply", "unmatched")
KINDS = (BOUNCE, COMPLAINT, AUTO_REPLY, REPLY, UNMATCHED)

MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # a bounce returns at most the headers of our letter
MAX_RECIPIENTS = 100


class UnreadableMessage(ValueError):
    """Not an RFC 5322 message at all (empty, binary junk, over the size limit)."""


@dataclass
class BouncedRecipient:
    address: str
    status: str  # the DSN status, `5.1.1`; "" when the report gives none we can infer
    permanent: bool
    diagnostic: str = ""

    def as_json(self) -> dict:
        return {"address": self.address, "status": self.status, "permanent": self.permanent}


@dataclass
class Classification:
    kind: str
    reason: str  # why it is that kind, in words for staff
    recipients: list[BouncedRecipient] = field(default_factory=list)
    # Message-IDs it names: In-Reply-To and References, and those of the returned letter.
    message_ids: list[str] = field(default_factory=list)
    # Addresses it was delivered to (To, Delivered-To, X-Original-To…): a VERP return path.
    delivered_to: list[str] = field(default_factory=list)
    sender: str = ""
    subject: str = ""
    feedback_type: str = ""  # a complaint's ARF Feedback-Type (`abuse`, `fraud`…)


def parse(raw: bytes) -> Message:
    """The message in `raw`; UnreadableMessage if there is none to read."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise UnreadableMessage(f"message of {len(raw)} bytes is over the "
                                f"{MAX_MESSAGE_BYTES}-byte limit")
    if not raw.strip():
        raise UnreadableMessage("empty message")
    # compat32: the parser that never raises on broken headers (flufl.bounce expects it too).
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    if not any(True for _ in message.raw_items()):
        raise UnreadableMessage("no header: not an RFC 5322 message")
    return message


# --- DSN status: permanent or not -------------------------------------------------------

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# Text that says the address or its domain does not exist (for reports without a usable
# status code: 5.0.0, a bare 550, or none at all).
_GONE = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient|address|domain)|"
    r"does not exist|doesn't exist|not exist|invalid (recipient|mailbox|address)|"
    r"recipient (address )?rejected|address rejected|mailbox unavailable|"
    r"mailbox not found|unknown (recipient|mailbox|address|local part)|"
    r"account (has been )?(disabled|closed|deleted|suspended)|no longer (active|valid)|"
    r"not a valid|host or domain name not found|name or service not known|"
    r"domain (not found|does not exist)|no mx|nxdomain|unrouteable|unroutable|"
    r"couldn't find any host|has moved|bad destination|addressee unknown|"
    r"address not found|no mailbox|not our customer|unknown or illegal alias|"
    r"doesn't have an? [\w.-]+ account|is not a known user|invalid final delivery|"
    r"no such person|user not found|recipient not found|recipientnotfound|"
    r"no matches to nameserver query|not listed in|unknown local user",
    re.IGNORECASE)
_TEMPORARY = re.compile(
    r"mailbox (is )?full|over ?quota|quota exceeded|exceeded (the )?(storage|quota)|"
    r"insufficient (storage|system storage)|try again|temporar|deferred|delayed|"
    r"greylist|rate limit|too many",
    re.IGNORECASE)
# Enhanced status codes (RFC 3463) that mean "no such address/domain" or "moved".
_PERMANENT_CODES = {"5.1.0", "5.1.1", "5.1.2", "5.1.3", "5.1.4", "5.1.6", "5.1.10",
                    "5.2.1", "5.4.4"}


def _status_in(text: str) -> str:
    match = _STATUS.search(text or "")
    return ".".join(match.groups()) if match else ""


def is_permanent(status: str, diagnostic: str = "") -> bool:
    """Whether a failed delivery means the address is gone (suppress it) rather than a
    refusal that may pass later or elsewhere (full, filtered, policy, expired)."""
    if status.startswith("4."):
        return False
    if status in _PERMANENT_CODES:
        return True
    text = diagnostic or ""
    if _TEMPORARY.search(text) or status.startswith(("5.2.", "5.7.")):
        return False  # full, over quota, filtered, refused by policy: the address exists
    # Other codes (5.0.0, 5.3.0 "Addressee unknown", 5.5.x…) and none at all: the words.
    return bool(_GONE.search(text)) or status.startswith("5.1.")


def _inferred_status(diagnostic: str, permanent: bool, warning: bool) -> str:
    found = _status_in(diagnostic)
    if found:
        return found
    if warning:
        return "4.0.0"
    if permanent:
        return "5.1.1" if _GONE.search(diagnostic or "") else "5.0.0"
    return "5.2.2" if re.search(r"full|quota", diagnostic or "", re.I) else "5.0.0"


# --- reading the parts ------------------------------------------------------------------

def _parts(message: Message) -> list[Message]:
    try:
        return list(message.walk())
    except Exception:  # a broken multipart structure
        return [message]


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def _report_type(message: Message) -> str:
    try:
        return (message.get_param("report-type") or "").lower() if _content_type(
            message) == "multipart/report" else ""
    except Exception:
        return ""


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = _text(part)
    blocks = []
    for chunk in re.split(r"\r?\n\s*\r?\n", text.strip()):
        if chunk.strip():
            blocks.append(email.message_from_string(chunk + "\n", policy=email.policy.compat32))
    return blocks


def _address_field(value: str) -> str:
    """`rfc822; anne@example.org` → anne@example.org (an untyped or garbled one: "")."""
    kind, _, address = (value or "").partition(";")
    if not address:
        address, kind = kind, ""
    address = mailtext.one_line(address).strip("<> ")
    return clean_email(address) if "@" in address else ""


def _returned_message_ids(message: Message) -> list[str]:
    """Message-IDs of the letter a report returns (its message/rfc822 or headers part), and
    any `Message-ID:` line quoted in a text part (the non-standard bounces)."""
    ids: list[str] = []
    for part in _parts(message):
        ctype = _content_type(part)
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            for returned in (inner if isinstance(inner, list) else []):
                if isinstance(returned, Message):
                    ids += mailtext.header_values(returned, "Message-ID")
        elif ctype in ("text/rfc822-headers", "text/plain", "message/global-headers"):
            ids += re.findall(r"(?im)^message-id:\s*(<[^>\s]{1,250}>)",
                              _text(part))
    return [mailtext.one_line(i, 255) for i in ids if i.strip()]


def _text(part: Message) -> str:
    # Mail servers write their reports in UTF-8 when they name no charset.
    return mailtext.part_text(part, default_charset="utf-8")


def _all_text(message: Message, limit: int = 200_000) -> str:
    out = []
    for part in _parts(message):
        if not part.is_multipart() and _content_type(part).startswith("text/"):
            out.append(_text(part))
        if sum(map(len, out)) > limit:
            break
    return "\n".join(out)[:limit]


# --- the kinds --------------------------------------------------------------------------

def _complaint(message: Message) -> Classification | None:
    reports = [p for p in _parts(message) if _content_type(p) == "message/feedback-report"]
    if not reports or (_report_type(message) not in ("feedback-report", "")):
        return None
    fields: dict[str, str] = {}
    for block in _field_blocks(reports[0]):
        for key, value in block.items():
            fields.setdefault(str(key).lower(), mailtext.one_line(value))
    recipients = []
    complained = _address_field(fields.get("original-rcpt-to", ""))
    if not complained:
        # The complaining recipient is the To of the letter it returns.
        for part in _parts(message):
            if _content_type(part) in ("message/rfc822", "text/rfc822-headers"):
                inner = part.get_payload()
                returned = inner[0] if isinstance(inner, list) and inner else None
                if returned is None and _content_type(part) == "text/rfc822-headers":
                    returned = email.message_from_string(_text(part))
                if isinstance(returned, Message):
                    found = mailtext.addresses(returned, "To")
                    complained = found[0] if found else ""
                break
    if complained:
        recipients.append(BouncedRecipient(complained, "", True, "complaint"))
    feedback = fields.get("feedback-type", "abuse")[:40]
    return Classification(COMPLAINT, f"ARF feedback report ({feedback})", recipients,
                          feedback_type=feedback)


def _dsn_recipients(message: Message) -> list[BouncedRecipient] | None:
    parts = [p for p in _parts(message)
             if _content_type(p) in ("message/delivery-status", "message/global-delivery-status")]
    if not parts:
        return None
    found: dict[str, BouncedRecipient] = {}
    for part in parts:
        for block in _field_blocks(part):
            # The address we wrote to first: a forward's Final-Recipient is not in our letter.
            address = (_address_field(block.get("Original-Recipient", ""))
                       or _address_field(block.get("Final-Recipient", "")))
            if not address:
                continue  # the per-message block (Reporting-MTA…), or an unusable recipient
            action = mailtext.one_line(block.get("Action", "")).lower()
            if action in ("delivered", "relayed", "expanded"):
                continue  # a success notice for this recipient
            diagnostic = mailtext.one_line(block.get("Diagnostic-Code", ""), 500)
            status = _status_in(block.get("Status", "")) or _status_in(diagnostic)
            warning = action == "delayed" or status.startswith("4.")
            permanent = not warning and is_permanent(status, diagnostic)
            status = status or _inferred_status(diagnostic, permanent, warning)
            found.setdefault(address.lower(), BouncedRecipient(address, status, permanent,
                                                               diagnostic))
    return list(found.values())[:MAX_RECIPIENTS]


_BOUNCE_SENDER = re.compile(
    r"mailer-daemon|postmaster|mail delivery (subsystem|system)|mail administrator|"
    r"mail ?delivery|maildelivery|bounce|microsoftexchange|noreply-dmarc|"
    r"mail-daemon|daemon@|no-reply@.*amazonses|returned mail",
    re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status notification|failure|failed|has failed|report)|"
    r"mail delivery failed|returned mail|failure notice|delivery notification|"
    r"could not be delivered|non[- ]?delivery|nondeliverable|unzustellbar|"
    r"non remis|no entregado|warning: could not send|delayed mail|"
    r"message status|delivery problem|mail system error|bounced|rejected",
    re.IGNORECASE)


def _looks_like_a_report(message: Message) -> bool:
    sender = " ".join(mailtext.header_values(message, "From")
                      + mailtext.header_values(message, "Sender"))
    subject = mailtext.header_text(message, "Subject")
    # A null envelope sender (`Return-Path: <>`) is what RFC 5321 gives delivery reports.
    return_paths = mailtext.header_values(message, "Return-Path")
    null_sender = bool(return_paths) and " ".join(return_paths).strip() in ("<>", "")
    return (bool(_BOUNCE_SENDER.search(sender)) or bool(_BOUNCE_SUBJECT.search(subject))
            or null_sender or _report_type(message) == "delivery-status")


def _heuristic_recipients(message: Message) -> list[BouncedRecipient]:
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector choking on a strange message: no verdict from it
        return []
    text = _all_text(message)
    out: dict[str, BouncedRecipient] = {}
    for raw_address, warning in [(a, False) for a in sorted(permanent)] + [
            (a, True) for a in sorted(temporary)]:
        if isinstance(raw_address, bytes):
            raw_address = raw_address.decode("utf-8", "replace")
        address = clean_email(str(raw_address))
        if not address or address.lower() in out:
            continue
        diagnostic = _near(text, address)
        status = _status_in(diagnostic)
        warning = warning or status.startswith("4.")
        is_gone = not warning and (is_permanent(status, diagnostic) if status or diagnostic
                                   else True)
        out[address.lower()] = BouncedRecipient(
            address, status or _inferred_status(diagnostic, is_gone, warning), is_gone,
            diagnostic)
    return list(out.values())[:MAX_RECIPIENTS]


def _near(text: str, address: str, span: int = 400) -> str:
    """The report's words about `address`: the lines around its first mention."""
    at = text.lower().find(address.lower())
    if at < 0:
        return mailtext.one_line(text[:span])
    return mailtext.one_line(text[max(0, at - span // 4):at + span], 500)


_AUTO_SUBJECT = re.compile(
    r"out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response|antwort)|"
    r"^auto:|autoreply|autorespond|vacation|on leave|away from (the )?office|"
    r"abwesenheit|automatische antwort|réponse automatique|absence|abwesend|"
    r"respuesta automática|fuera de la oficina|risposta automatica|fuori ufficio|"
    r"resposta automática|fora do escritório|ausente|automatisch antwoord|afwezig|"
    r"autosvar|frånvaro|automaattinen vastaus|poissa|automatikus válasz|"
    r"自動返信|自動応答|不在|자동 회신|부재중|自动回复|自動回覆|автоматический ответ|"
    r"автоматичен отговор|odgovor automatski|răspuns automat|automatinis atsakymas|"
    r"balasan automatik|përgjigje automatike|fraværende|fravær",
    re.IGNORECASE)


def _auto_reply_reason(message: Message) -> str:
    auto = mailtext.one_line(" ".join(mailtext.header_values(message, "Auto-Submitted"))).lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto[:40]} (RFC 3834)"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated", "X-Auto-Response-Suppress",
                 "X-Vacation"):
        if mailtext.header_values(message, name):
            return f"{name} header"
    precedence = mailtext.one_line(" ".join(mailtext.header_values(message, "Precedence")))
    if precedence.lower() in ("auto_reply", "auto-reply"):
        return f"Precedence: {precedence}"
    subject = mailtext.header_text(message, "Subject")
    if _AUTO_SUBJECT.search(subject):
        return "out-of-office subject"
    return ""


def _references(message: Message) -> list[str]:
    ids: list[str] = []
    for name in ("In-Reply-To", "References"):
        for value in mailtext.header_values(message, name):
            ids += re.findall(r"<[^<>\s]{1,250}>", value) or [mailtext.one_line(value, 255)]
    return [i for i in ids if i][-101:]


_DELIVERED_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To",
                      "X-Original-Recipient", "To")


def delivered_to(message: Message) -> list[str]:
    found: list[str] = []
    for name in _DELIVERED_HEADERS:
        for address in mailtext.addresses(message, name):
            if address.lower() not in found:
                found.append(address.lower())
    return found


def classify(message: Message) -> Classification:
    """What `message` is (see the module's docstring); never raises on hostile input."""
    result = _complaint(message)
    if result is None:
        dsn = _dsn_recipients(message)
        if dsn:
            result = Classification(BOUNCE, "delivery status notification (RFC 3464)", dsn)
        elif _looks_like_a_report(message):
            found = _heuristic_recipients(message)
            if found:
                result = Classification(BOUNCE, "non-standard delivery report", found)
    if result is None:
        reason = _auto_reply_reason(message)
        result = (Classification(AUTO_REPLY, reason) if reason
                  else Classification(REPLY, "a person's message"))
    result.message_ids = _references(message) + _returned_message_ids(message)
    result.delivered_to = delivered_to(message)
    senders = mailtext.addresses(message, "From")
    result.sender = senders[0].lower() if senders else ""
    result.subject = mailtext.header_text(message, "Subject", 998)
    return result
