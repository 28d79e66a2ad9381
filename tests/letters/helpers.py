"""Shared set-up for the letters tests: an approved batch, loopback SMTP servers."""

from __future__ import annotations

from aiosmtpd.controller import Controller

from letters import batches


def approved_batch(campaign, builder, reviewer, **filters):
    batch = batches.build_batch(campaign=campaign, actor=builder, **filters)
    batches.submit_batch(batch=batch, actor=builder)
    return batches.approve_batch(batch=batch, actor=reviewer)


class Collector:
    """aiosmtpd handler that keeps every message, and refuses recipients it is told to."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued"


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def smtp_server(handler: Collector) -> Controller:
    """A real SMTP server (aiosmtpd) on loopback; aiosmtpd needs a concrete port."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller
