"""Login throttling (campaign/login.py, django-axes) through the real login form."""

import pytest
from django.urls import reverse

from campaign.clientip import client_ip
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.5"


def attempt(client, username, password, address="203.0.113.7", **meta):
    return client.post(reverse("login"), {"username": username, "password": password},
                       REMOTE_ADDR=address, **meta)


def fail_until_locked(client, username, limit, **kwargs):
    """`limit` wrong passwords: all but the last get the form back, the last one locks (429)."""
    for _ in range(limit - 1):
        assert attempt(client, username, "wrong", **kwargs).status_code == 200
    assert attempt(client, username, "wrong", **kwargs).status_code == 429


def test_five_wrong_passwords_lock_the_username_even_for_the_right_one(client, settings):
    make_user("alice", "analyst")
    fail_until_locked(client, "alice", settings.LOGIN_FAILURES_PER_USER)
    locked = attempt(client, "alice", "correct-horse-9", address="198.51.100.9")
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(settings.LOGIN_LOCKOUT_SECONDS)
    assert b"Too many failed attempts" in locked.content
    assert "_auth_user_id" not in client.session


def test_the_lock_ends_after_the_lockout_seconds(client, settings):
    import time_machine

    make_user("alice", "analyst")
    with time_machine.travel("2026-11-20 10:00Z", tick=False) as clock:
        fail_until_locked(client, "alice", settings.LOGIN_FAILURES_PER_USER)
        clock.shift(settings.LOGIN_LOCKOUT_SECONDS - 5)
        assert attempt(client, "alice", "correct-horse-9").status_code == 429
        clock.shift(10)
        assert attempt(client, "alice", "correct-horse-9").status_code == 302


def test_another_user_is_not_locked_by_someone_elses_failures(client, settings):
    make_user("alice", "analyst")
    make_user("bob", "staff")
    for n in range(settings.LOGIN_FAILURES_PER_USER):
        attempt(client, "alice", "wrong", address=f"192.0.2.{n}")
    response = attempt(client, "bob", "correct-horse-9", address="198.51.100.9")
    assert response.status_code == 302


def test_many_failures_from_one_address_do_not_lock_out_its_other_users(client, settings):
    """Behind a reverse proxy every staff member has one address: an attacker spraying
    usernames from it must not lock out a colleague who types the right password."""
    settings.LOGIN_FAILURES_PER_ADDRESS = 3
    make_user("carol", "reviewer")
    for name in ("u1", "u2", "u3"):
        attempt(client, name, "x")
    assert attempt(client, "carol", "correct-horse-9").status_code == 302


def test_an_address_over_its_limit_locks_the_usernames_that_failed_from_it(client, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 3
    make_user("carol", "reviewer")
    make_user("dave", "staff")
    assert attempt(client, "carol", "wrong").status_code == 200
    for name in ("u1", "u2"):
        attempt(client, name, "x")
    # carol failed from this address, which is over its limit: locked here, not elsewhere.
    assert attempt(client, "carol", "correct-horse-9").status_code == 429
    assert attempt(client, "carol", "correct-horse-9", address="198.51.100.9").status_code == 302
    # A username that has not failed here gets one try; known and unknown alike (no
    # account enumeration), then the address holds it too.
    for name in ("nobody", "dave"):
        assert attempt(client, name, "x").status_code == 429
    assert attempt(client, "u1", "x").status_code == 429


def test_a_good_login_before_the_limit_still_works(client):
    make_user("dave", "staff")
    attempt(client, "dave", "wrong")
    assert attempt(client, "dave", "correct-horse-9").status_code == 302


def test_a_fullwidth_spelling_counts_for_the_same_user(client, settings):
    """`ａ_staff2` (fullwidth) is the user `a_staff2` for Django's login form (NFKC)."""
    make_user("a_staff2", "staff")
    for n in range(settings.LOGIN_FAILURES_PER_USER - 1):
        spelling = "ａ_staff2" if n % 2 else "a_staff2"
        assert attempt(client, spelling, "wrong", address=f"192.0.2.{n}").status_code == 200
    assert attempt(client, "ａ＿ｓｔａｆｆ２", "wrong").status_code == 429


def test_a_locked_user_cannot_log_in_with_a_compatibility_spelling(client, settings):
    make_user("a_staff2", "staff")
    fail_until_locked(client, "a_staff2", settings.LOGIN_FAILURES_PER_USER)
    for spelling in ("ａ_staff2", "ａ＿ｓｔａｆｆ２", " a_staff2 ", "a\uff3fstaff2"):
        response = attempt(client, spelling, "correct-horse-9", address="198.51.100.9")
        assert response.status_code == 429, spelling
    assert "_auth_user_id" not in client.session


def test_the_admin_login_is_throttled_too(client, settings):
    make_user("root", "admin")
    fail_until_locked(client, "root", settings.LOGIN_FAILURES_PER_USER)
    response = client.post(reverse("admin:login"),
                           {"username": "root", "password": "correct-horse-9"},
                           REMOTE_ADDR="198.51.100.9")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


# --- behind a reverse proxy (TRUSTED_PROXIES) ----------------------------------------------


def test_behind_a_trusted_proxy_each_user_is_counted_by_their_own_address(client, settings):
    settings.TRUSTED_PROXIES = [f"{PROXY}/32"]
    settings.LOGIN_FAILURES_PER_ADDRESS = 3
    make_user("erin", "staff")
    make_user("frank", "staff")
    # An attacker at 198.51.100.66, through the proxy, sprays usernames and then tries erin.
    for name in ("u1", "u2", "erin"):
        attempt(client, name, "x", address=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.66")
    assert attempt(client, "erin", "correct-horse-9", address=PROXY,
                   HTTP_X_FORWARDED_FOR="198.51.100.66").status_code == 429
    # erin herself, through the same proxy from her own address, gets in; so does frank,
    # who mistyped once from his.
    assert attempt(client, "erin", "correct-horse-9", address=PROXY,
                   HTTP_X_FORWARDED_FOR="203.0.113.20").status_code == 302
    client.logout()
    assert attempt(client, "frank", "wrong", address=PROXY,
                   HTTP_X_FORWARDED_FOR="203.0.113.21").status_code == 200
    assert attempt(client, "frank", "correct-horse-9", address=PROXY,
                   HTTP_X_FORWARDED_FOR="203.0.113.21").status_code == 302


def test_a_client_cannot_escape_its_address_by_forging_x_forwarded_for(client, settings):
    """A peer that is not a trusted proxy is its own address, whatever header it sends (even
    one that ends in the trusted proxy's address, which ipware's proxy list would believe)."""
    settings.TRUSTED_PROXIES = [f"{PROXY}/32"]
    settings.LOGIN_FAILURES_PER_ADDRESS = 3
    make_user("carol", "reviewer")
    assert attempt(client, "carol", "wrong", address="198.51.100.66").status_code == 200
    for n, name in enumerate(("u1", "u2")):
        attempt(client, name, "x", address="198.51.100.66",
                HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, {PROXY}")
    response = attempt(client, "carol", "correct-horse-9", address="198.51.100.66",
                       HTTP_X_FORWARDED_FOR=f"192.0.2.99, {PROXY}")
    assert response.status_code == 429


def test_without_trusted_proxies_x_forwarded_for_is_ignored(rf, settings):
    settings.TRUSTED_PROXIES = []
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client_ip(request) == PROXY


def test_the_client_is_the_first_untrusted_hop_from_the_right(rf, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "2001:db8:cd::/48"]
    cases = {
        # header as the nearest proxy passes it on → the client
        "198.51.100.1": "198.51.100.1",
        "6.6.6.6, 198.51.100.1": "198.51.100.1",  # the client's own forged entry is left
        "198.51.100.1, 10.2.3.4": "198.51.100.1",  # a second trusted proxy is skipped
        "198.51.100.1, [2001:db8:cd::7]:443": "198.51.100.1",
        "[2001:db8::1]:5000": "2001:db8::1",
        "": PROXY,
    }
    for header, expected in cases.items():
        request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=header)
        assert client_ip(request) == expected, header
