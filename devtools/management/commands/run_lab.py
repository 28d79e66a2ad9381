"""run_lab: the demo lab's pretend hosts and registries on loopback (see devtools.lab)."""

from __future__ import annotations

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devtools import lab
from probes.verification.services import canary_key


class Command(BaseCommand):
    help = (
        "Run the demo lab on loopback: open and closed SMTP relays and proxies, a silent host, "
        "the canary, an RDAP server (bootstrap: 127.0.0.0/8 → itself) and a WHOIS server, all "
        "on BASE.x addresses. Point the product at it with the settings --print-env shows "
        "(bin/dev does)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bind-base", default=lab.DEFAULT_BASE, metavar="127.X.Y",
                            help=f"first three octets of the lab's addresses "
                                 f"(default {lab.DEFAULT_BASE}); must be loopback")
        parser.add_argument("--print-env", action="store_true",
                            help="print the settings that point the product at the lab "
                                 "(shell `export` lines) and exit")

    def handle(self, *args, **options):
        try:
            the_lab = lab.Lab(canary_key(), options["bind_base"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        env = the_lab.environment()
        if options["print_env"]:
            for name, value in env.items():
                self.stdout.write(f"export {name}={value}")
            return
        for warning in self.mismatches(env):
            self.stderr.write(f"warning: {warning}")

        async def main() -> None:
            await the_lab.start()
            try:
                for line in the_lab.describe():
                    self.stdout.write(line)
                # bin/dev waits for this line before it fetches the lab's RDAP bootstrap.
                self.stdout.write(f"lab ready on {the_lab.base}.x")
                self.stdout.flush()
                await asyncio.Event().wait()
            finally:
                await the_lab.close()

        try:
            asyncio.run(main())
        except OSError as exc:
            raise CommandError(
                f"cannot start the lab on {the_lab.base}.x: {exc.strerror or exc} "
                "(is another run_lab already running?)"
            ) from None
        except KeyboardInterrupt:
            pass

    @staticmethod
    def mismatches(env: dict[str, str]) -> list[str]:
        """Settings that would send this process's product elsewhere than to this lab."""
        current = {
            "PROBE_CANARY_ADDR": settings.PROBE_CANARY_ADDR,
            "PROBE_CANARY_DOMAIN": settings.PROBE_CANARY_DOMAIN,
            "RDAP_BOOTSTRAP_URL": settings.RDAP_BOOTSTRAP_URL,
            "WHOIS_IANA_SERVER": settings.WHOIS_IANA_SERVER,
        }
        return [
            f"{name}={current[name]!r}, but the lab's is {value!r}"
            for name, value in env.items()
            if name in current and current[name] != value
        ]
