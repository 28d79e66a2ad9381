"""The demo lab: the demo's whole pipeline (import → probe → contact) against it, on loopback.

The lab runs in-process at 127.0.77.x (not bin/dev's 127.0.42.x, so a running demo does not
collide with the tests); the demo feeds are imported with their addresses moved there. Every
socket connect of the process is watched through an audit hook while a test runs: nothing may
leave loopback.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from campaign import kinds, states
from campaign.imports import create_import, run_import
from campaign.models import Campaign, Host
from devtools import lab
from devtools.lab import LoopThread
from probes.contacts import bootstrap, resolving
from probes.contacts.models import Contact
from probes.verification import services as probe_services
from probes.verification.models import ProbeResult, ProbeRun

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "devtools" / "demo"
BASE = "127.0.77"

# last octet → (overall verdict, abuse e-mail, letter language); written out, not derived
# from devtools.lab, so a change to the lab shows up here.
EXPECTED = {
    17: ("open", "abuse@labornetz-berlin.example", "de"),
    18: ("not_open", None, None),
    33: ("open", "abuse@reseau-labo-lyon.example", "fr"),
    34: ("unreachable", None, None),
    49: ("open", "abuse@labnet-tokyo.example", "ja"),
    50: ("unreachable", None, None),
    97: ("open", "abuse@lab-isp.example", "en"),
    113: ("open", "abuse@rete-laboratorio.example", "it"),
    65: ("open", "abuse@laboratorio-sp.example", "pt-BR"),
    66: ("not_open", None, None),
    81: ("open", "abuse@red-laboratorio.example", "es"),
    82: ("not_open", None, None),
}

# --- every connect and name look-up of this process, while a test watches ---------------

_watched: list[tuple[str, object]] | None = None


def _audit(event: str, args: tuple) -> None:
    if _watched is None:
        return
    if event == "socket.connect" and isinstance(args[1], tuple):
        _watched.append(("connect", args[1][0]))
    elif event == "socket.getaddrinfo":
        _watched.append(("getaddrinfo", args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def outbound():
    """What the process connected to (and resolved) during the test; all of it loopback."""
    global _watched
    _watched = seen = []
    yield seen
    _watched = None
    for what, host in seen:
        text = host.decode() if isinstance(host, bytes) else str(host)
        try:
            loopback = ipaddress.ip_address(text).is_loopback
        except ValueError:
            loopback = False  # a name: the product resolves none when talking to the lab
        assert loopback, f"{what} {text!r} is not a loopback address"


@pytest.fixture(scope="module")
def running_lab():
    from probes.verification.services import canary_key

    thread = LoopThread()
    the_lab = thread.run(lab.Lab(canary_key(), BASE).start())
    yield the_lab
    thread.run(the_lab.close())
    thread.stop()


@pytest.fixture
def lab_settings(settings, running_lab, tmp_path):
    for name, value in running_lab.environment().items():
        setattr(settings, name, value.split(",") if name == "PROBE_ALLOWED_NETWORKS" else value)
    settings.PROBE_TIMEOUT = 1.0
    settings.CONTACT_LOOKUPS_PER_SECOND = 0
    settings.RDAP_BOOTSTRAP_DIR = str(tmp_path / "rdap")
    return settings


def lab_feed(filename: str, tmp_path: Path) -> Path:
    """A demo feed with its addresses moved from bin/dev's lab to this test's."""
    moved = tmp_path / filename
    moved.write_text((DEMO / filename).read_text().replace("127.0.42.", f"{BASE}."))
    return moved


def import_lab_feeds(campaign: Campaign, tmp_path: Path) -> list[str]:
    summaries = []
    for filename, fmt, kind in (("lab-relays.txt", "ipport", "relay"),
                                ("lab-proxies.txt", "ip", "proxy")):
        feed_import = create_import(campaign=campaign, source=str(lab_feed(filename, tmp_path)),
                                    fmt=fmt, kind=kind)
        summaries.append(run_import(feed_import.pk).summary_line)
    return summaries


def test_the_demo_feeds_list_exactly_the_labs_hosts():
    assert (DEMO / "lab-relays.txt").read_text() == lab.relay_feed(lab.DEFAULT_BASE)
    assert (DEMO / "lab-proxies.txt").read_text() == lab.proxy_feed(lab.DEFAULT_BASE)
    assert sorted(p.name for p in DEMO.iterdir()) == ["lab-proxies.txt", "lab-relays.txt"]
    listed = re.findall(r"^127\.0\.77\.(\d+)", lab.relay_feed(BASE) + lab.proxy_feed(BASE),
                        re.MULTILINE)
    assert sorted(map(int, listed)) == sorted(EXPECTED)


@pytest.mark.django_db
def test_the_whole_pipeline_runs_against_the_lab_without_leaving_loopback(
    campaign, lab_settings, running_lab, tmp_path, outbound
):
    assert import_lab_feeds(campaign, tmp_path) == [
        "lines=9 added=8 known=0 rejected=0", "lines=5 added=4 known=0 rejected=0",
    ]

    run = probe_services.run_probe_run(probe_services.create_probe_run(campaign))

    assert run.status == ProbeRun.DONE
    assert run.by_verdict == {"open": 7, "not_open": 3, "unreachable": 2, "error": 0}
    hosts = {int(h.ip.rsplit(".", 1)[1]): h for h in Host.objects.filter(campaign=campaign)}
    state_for = {"open": states.VERIFIED_OPEN, "not_open": states.NOT_OPEN,
                 "unreachable": states.UNREACHABLE}
    assert {o: h.state for o, h in hosts.items()} == {
        o: state_for[verdict] for o, (verdict, _, _) in EXPECTED.items()
    }
    evidence = {(r.host.ip, r.check_name, r.port): (r.verdict, r.variant)
                for r in ProbeResult.objects.filter(run=run).select_related("host")}
    assert evidence[(f"{BASE}.17", "smtp_relay", 2525)] == ("open", "plain")
    assert evidence[(f"{BASE}.97", "smtp_relay", 2525)] == ("open", "source_route")
    assert evidence[(f"{BASE}.18", "smtp_relay", 2525)] == ("not_open", "")
    assert evidence[(f"{BASE}.81", "http_proxy", 3128)] == ("open", "get,connect")
    assert evidence[(f"{BASE}.82", "http_proxy", 3128)] == ("not_open", "")
    assert evidence[(f"{BASE}.65", "socks5", 1080)] == ("open", "socks5")
    assert evidence[(f"{BASE}.66", "socks5", 1080)] == ("not_open", "")
    assert hosts[65].kinds == kinds.PROXY and hosts[17].kinds == kinds.RELAY

    bootstrap.refresh_bootstrap()
    summary = resolving.resolve_hosts(campaign)

    # One RDAP query per open host (each sits in its own network); the Italian network is
    # missing from RDAP, so it costs one more query, at WHOIS.
    assert summary.line == "hosts=7 resolved=7 failed=0 queries=8"
    contacts = {int(c.host.ip.rsplit(".", 1)[1]): c
                for c in Contact.objects.filter(host__campaign=campaign).select_related("host")}
    assert {o: (c.email, c.language) for o, c in contacts.items()} == {
        o: (email, language) for o, (_, email, language) in EXPECTED.items() if email
    }
    assert {o: c.source for o, c in contacts.items()} == {
        o: "whois" if o == 113 else "rdap" for o, (_, email, _) in EXPECTED.items() if email
    }
    assert {c.country for c in contacts.values()} == {"DE", "FR", "JP", "US", "IT", "BR", "ES"}
    assert Host.objects.filter(campaign=campaign, state=states.CONTACT_RESOLVED).count() == 7
    # The lab's registries really answered these: the RDAP server saw the bootstrap fetch
    # and one look-up per open host.
    requests = running_lab.rdap.requests
    assert {"/bootstrap/ipv4.json", "/bootstrap/ipv6.json"} <= set(requests)
    assert {f"/rdap/ip/{BASE}.{o}" for o, (verdict, _, _) in EXPECTED.items()
            if verdict == "open"} <= set(requests)
    assert ("lab", f"{BASE}.113") in running_lab.whois.queries
    # The hook does see the probes' and the clients' connects (so its silence about anything
    # off loopback means something): to a relay, to the canary through a proxy, to RDAP.
    assert {("connect", f"{BASE}.17"), ("connect", f"{BASE}.250"),
            ("connect", f"{BASE}.251"), ("connect", f"{BASE}.252")} <= set(outbound)


@pytest.mark.django_db
def test_the_labs_proxies_refuse_to_tunnel_anywhere_but_loopback(lab_settings, outbound):
    with socket.create_connection((f"{BASE}.81", 3128), timeout=5) as sock:
        sock.sendall(b"CONNECT 192.0.2.10:80 HTTP/1.1\r\nHost: 192.0.2.10:80\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 502 ")
    with socket.create_connection((f"{BASE}.81", 3128), timeout=5) as sock:
        sock.sendall(b"GET http://example.com:80/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 502 ")
    with socket.create_connection((f"{BASE}.81", 3128), timeout=5) as sock:
        # Loopback, but not the lab: the demo's open proxy is no way into local services.
        sock.sendall(b"CONNECT 127.0.0.1:5432 HTTP/1.1\r\nHost: 127.0.0.1:5432\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 502 ")
    with socket.create_connection((f"{BASE}.65", 1080), timeout=5) as sock:
        sock.sendall(b"\x05\x01\x00")
        assert sock.recv(2) == b"\x05\x00"
        sock.sendall(b"\x05\x01\x00\x01" + bytes([192, 0, 2, 10]) + (80).to_bytes(2, "big"))
        assert sock.recv(2) == b"\x05\x02"  # not allowed by ruleset
    # The `outbound` fixture checks that the lab never even tried 192.0.2.10 or example.com,
    # and only this test's own connections were made.
    assert [host for what, host in outbound if what == "connect"] == [
        f"{BASE}.81", f"{BASE}.81", f"{BASE}.81", f"{BASE}.65"]


def test_the_lab_only_ever_binds_loopback():
    with pytest.raises(ValueError, match="not loopback"):
        lab.Lab(b"key", "10.0.0")
    with pytest.raises(ValueError, match="three octets"):
        lab.Lab(b"key", "127.0")
    assert lab.check_base("127.000.42") == "127.0.42"


@pytest.mark.django_db
def test_seed_demo_imports_the_lab_feeds(settings):
    settings.DEBUG = True
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.42.0/24"]
    out = _call_seed_demo()
    assert "lab-relays.txt: lines=9 added=8 known=0 rejected=0" in out
    assert "lab-proxies.txt: lines=5 added=4 known=0 rejected=0" in out
    ips = set(Host.objects.filter(campaign__slug="demo").values_list("ip", flat=True))
    assert ips == {f"127.0.42.{octet}" for octet in EXPECTED}
    assert _call_seed_demo().strip() == "demo data already present"


@pytest.mark.django_db
def test_seed_demo_refuses_an_older_demo_campaign_with_real_addresses(settings, agency):
    from campaign.services import create_campaign

    settings.DEBUG = True
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.42.0/24"]
    demo = create_campaign(slug="demo", agency_name=agency.name, kinds="relay,proxy")
    Host.objects.create(campaign=demo, ip="36.138.116.5", kinds=kinds.PROXY)
    with pytest.raises(CommandError, match="1 real Internet addresses .e.g. 36.138.116.5"):
        _call_seed_demo()


@pytest.mark.django_db
def test_seed_demo_moves_the_feeds_to_the_labs_base(settings):
    # bin/dev's LAB_BASE: the lab, the allowlist and the demo hosts move together.
    settings.DEBUG = True
    settings.PROBE_ALLOWED_NETWORKS = [f"{BASE}.0/24"]
    out = _call("seed_demo", "--lab-base", BASE)
    assert "lab-relays.txt: lines=9 added=8 known=0 rejected=0" in out
    ips = set(Host.objects.filter(campaign__slug="demo").values_list("ip", flat=True))
    assert ips == {f"{BASE}.{octet}" for octet in EXPECTED}


@pytest.mark.django_db
@pytest.mark.parametrize("allowed", [["127.0.0.0/8"], ["127.0.42.0/24", "127.0.0.1/32"],
                                     ["127.0.0.0/16"], ["127.0.42.0/24", "::1/128"]])
def test_seed_demo_refuses_an_allowlist_wider_than_the_lab(settings, allowed):
    settings.DEBUG = True
    settings.PROBE_ALLOWED_NETWORKS = allowed
    with pytest.raises(CommandError, match="loopback beyond the demo lab .127.0.42.0/24."):
        _call_seed_demo()
    assert not Campaign.objects.filter(slug="demo").exists()


@pytest.mark.django_db
def test_under_the_lab_settings_a_feed_line_for_this_machine_is_refused(
    campaign, lab_settings, tmp_path
):
    # The issue: with all of 127.0.0.0/8 allowed, `127.0.0.1` was imported and probed on the
    # developer's own ports 25/587. Only the lab's /24 is allowed now.
    assert lab_settings.PROBE_ALLOWED_NETWORKS == [f"{BASE}.0/24"]
    feed = tmp_path / "mixed.txt"
    feed.write_text(f"127.0.0.1\n127.0.1.1\n{BASE}.17\n")
    done = run_import(create_import(campaign=campaign, source=str(feed), fmt="ip",
                                        kind="relay").pk)
    assert done.summary_line == "lines=3 added=1 known=0 rejected=2"
    assert list(Host.objects.filter(campaign=campaign).values_list("ip", flat=True)) == [
        f"{BASE}.17"]


@pytest.mark.django_db
def test_hosts_outside_the_lab_show_as_refused_not_as_errors(
    client, alice, campaign, lab_settings, outbound
):
    lab_settings.PROBE_LAB_ONLY = True
    # A real feed imported into the demo: public addresses, which lab-only mode never probes.
    outside = [Host.objects.create(campaign=campaign, ip=ip, kinds=kinds.RELAY)
               for ip in ("36.138.116.5", "36.138.116.6")]
    Host.objects.create(campaign=campaign, ip=f"{BASE}.18", kinds=kinds.RELAY)

    run = probe_services.run_probe_run(probe_services.create_probe_run(campaign))

    # The CLI line keeps its four verdicts; the pages tell the refusal apart.
    # (the lab host has no feed port: the default relay ports 25/587, where the lab is silent)
    assert run.summary_line == "probed=3 open=0 not_open=0 unreachable=1 error=2"
    assert run.shown_counts() == {"open": 0, "not_open": 0, "unreachable": 1,
                                  "error": 0, "refused_outside_lab": 2}
    client.force_login(alice)
    page = client.get(f"/c/{campaign.slug}/").content.decode()
    box = page.split('id="latest-probe-run"', 1)[1].split("</dl>", 1)[0]
    tiles = dict(re.findall(r'<dt>([^<]+)</dt><dd data-field="[^"]+">(\d+)</dd>', box))
    assert tiles == {"Open": "0", "Not open": "0", "Unreachable": "1", "Error": "0",
                     "Refused: outside the lab": "2"}
    status = client.get(f"/c/{campaign.slug}/probes/{run.pk}/status.json").json()
    assert status["shown"]["refused_outside_lab"] == 2 and status["shown"]["error"] == 0
    assert status["by_verdict"]["error"] == 2  # the API's counts stay the CLI's
    host_page = client.get(f"/c/{campaign.slug}/hosts/{outside[0].ip}/").content.decode()
    assert "Refused: outside the lab" in host_page
    assert ">Error<" not in host_page
    # Nothing was sent to them: not even a connect.
    assert not [h for what, h in outbound if what == "connect" and h.startswith("36.")]


def test_seed_demo_refuses_without_the_loopback_allowlist(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PROBE_", "DJANGO_", "DATABASE_URL", "SYS_VAR_DIR"))}
    env.update(DJANGO_SETTINGS_MODULE="campaign.settings", DEBUG="1",
               SYS_VAR_DIR=str(tmp_path),
               # No such database: the refusal comes before any connection.
               DATABASE_URL="postgres://postgres@127.0.0.1:5432/sys_never_created")
    done = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    assert "PROBE_ALLOWED_NETWORKS=(empty) does not allow them" in done.stderr
    assert "127.0.42.17" in done.stderr
    assert "bin/dev" in done.stderr
    assert done.stdout == ""  # nothing was created, not even the users

    env["PROBE_ALLOWED_NETWORKS"] = "10.0.0.0/8"
    done = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    assert "PROBE_ALLOWED_NETWORKS=10.0.0.0/8 does not allow them" in done.stderr


def test_run_lab_prints_the_settings_bin_dev_exports():
    out = _call("run_lab", "--print-env", "--bind-base", "127.0.42")
    assert out.splitlines() == [
        "export PROBE_ALLOWED_NETWORKS=127.0.42.0/24",
        "export PROBE_CANARY_ADDR=127.0.42.250:8025",
        "export PROBE_CANARY_DOMAIN=canary.lab.example",
        "export RDAP_BOOTSTRAP_URL=http://127.0.42.251:8080/bootstrap/",
        "export WHOIS_IANA_SERVER=127.0.42.252:4343",
    ]
    script = (REPO / "bin" / "dev").read_text()
    for line in out.splitlines():
        assert line.replace("127.0.42", "$LAB_BASE") in script


def test_run_lab_refuses_a_base_off_loopback():
    with pytest.raises(CommandError, match="not loopback"):
        _call("run_lab", "--bind-base", "192.168.1")


def _call(*args: str) -> str:
    import io

    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _call_seed_demo() -> str:
    return _call("seed_demo")
