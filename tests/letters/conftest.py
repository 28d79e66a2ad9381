import itertools
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from campaign import states as host_states
from tests.conftest import make_user

# The probes' loopback fixtures (fake servers, the canary, the loopback-only guard on every
# outgoing connection) serve the follow-up tests, which re-test hosts with the real engine.
from tests.probes.conftest import canary, connections, fake, loop, probe_settings  # noqa: F401

_ips = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def compiled_translations():
    """The .mo catalogs, as the set-up command builds them."""
    call_command("compile_translations", verbosity=0)


@pytest.fixture
def agency(db):
    from campaign.models import Agency

    return Agency.objects.create(
        name="Federal Trade Commission", country="US",
        sender_email="secureyourserver@ftc.example", reply_to="secureyourserver@ftc.example",
        letterhead="UNITED STATES OF AMERICA\nFEDERAL TRADE COMMISSION\nWASHINGTON, DC 20580",
        signature="Operation Secure Your Server\nFederal Trade Commission",
        info_url="https://www.ftc.example/secureyourserver",
        instructions_url="https://www.ftc.example/secureyourserver/howto",
    )


@pytest.fixture
def victor(db):
    """A second reviewer."""
    return make_user("victor", "reviewer")


@pytest.fixture
def ada(db):
    """An admin: may build and review, but never approve her own batch."""
    return make_user("ada", "admin")


PROBED_AT = datetime(2026, 11, 20, 14, 2, tzinfo=UTC)


def add_finding(campaign, *, email, language="en", country="US", ip=None,
                check="smtp_relay", port=25, state=host_states.CONTACT_RESOLVED,
                variant="plain", when=PROBED_AT):
    """A host verified open (one open probe result) with a resolved contact."""
    from campaign.models import Host
    from probes.contacts.models import Contact
    from probes.verification.models import ProbeResult, ProbeRun

    n = next(_ips)
    ip = ip or f"198.51.{n // 250}.{n % 250 + 1}"
    host = Host.objects.create(campaign=campaign, ip=ip, state=state, country=country, kinds=3)
    Contact.objects.create(host=host, status=Contact.RESOLVED, email=email, language=language,
                           country=country, source="rdap")
    run = ProbeRun.objects.filter(campaign=campaign).first() or ProbeRun.objects.create(
        campaign=campaign, status=ProbeRun.DONE)
    details = {}
    if check == "smtp_relay":
        details = {"accepted": {"sender": "probe@canary.test",
                                "recipient": "sys-probe-1@canary.test", "reply": "250 ok"}}
    ProbeResult.objects.create(run=run, host=host, check_name=check, port=port, verdict="open",
                               variant=variant, details=details, started_at=when)
    return host


POSTAL_ADDRESS = ("Harborline Communications, LLC\n4100 Pier Avenue\nSuite 300\n"
                  "Norfolk, VA 23510\nUnited States")


def add_postal_finding(campaign, *, address=POSTAL_ADDRESS, language="en", country="US",
                       ip=None, **kwargs):
    """A host verified open whose owner no e-mail address reaches, with a postal address
    from the registry: the end of the fallback chain, which a batch writes to by post."""
    from campaign.models import Host
    from probes.contacts.models import Contact

    host = add_finding(campaign, email="gone@example.invalid", language=language,
                       country=country, ip=ip, state=host_states.NO_CONTACT, **kwargs)
    Contact.objects.filter(host=host).update(status=Contact.NO_CONTACT, email="",
                                             postal_address=address)
    return Host.objects.get(pk=host.pk)


@pytest.fixture
def postal_finding(campaign):
    def make(**kwargs):
        return add_postal_finding(campaign, **kwargs)

    return make


@pytest.fixture
def finding(campaign):
    def make(**kwargs):
        return add_finding(campaign, **kwargs)

    return make
