"""run_canary: the service suspected proxies are asked to reach (see verification.canary)."""

from __future__ import annotations

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from probes.verification.canary import CanaryServer
from probes.verification.services import canary_key, parse_hostport


class Command(BaseCommand):
    help = (
        "Run the canary: answers GET /t/<nonce> with a proof only it and the probes can "
        "compute. Default bind: PROBE_CANARY_ADDR, else 127.0.0.1:8025."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bind", metavar="HOST:PORT")

    def handle(self, *args, **options):
        try:
            host, port = parse_hostport(
                options["bind"] or settings.PROBE_CANARY_ADDR or "127.0.0.1:8025"
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

        async def main() -> None:
            server = await CanaryServer(canary_key(), host, port).start()
            self.stdout.write(f"canary listening on {host}:{server.port}")
            self.stdout.flush()
            await server.serve_forever()

        try:
            asyncio.run(main())
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        except KeyboardInterrupt:
            pass
