import pytest
from django.urls import reverse

from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def attempt(client, username, password, address="203.0.113.7"):
    return client.post(reverse("login"), {"username": username, "password": password},
                       REMOTE_ADDR=address)


def test_five_wrong_passwords_lock_the_username_even_for_the_right_one(client, settings):
    make_user("alice", "analyst")
    for _ in range(settings.LOGIN_FAILURES_PER_USER):
        assert attempt(client, "alice", "wrong").status_code == 200
    locked = attempt(client, "alice", "correct-horse-9", address="198.51.100.9")
    assert locked.status_code == 429 and locked["Retry-After"]
    assert b"Too many failed attempts" in locked.content
    assert "_auth_user_id" not in client.session


def test_another_user_is_not_locked_by_someone_elses_failures(client, settings):
    make_user("alice", "analyst")
    make_user("bob", "staff")
    for _ in range(settings.LOGIN_FAILURES_PER_USER):
        attempt(client, "alice", "wrong", address=f"192.0.2.{_}")
    response = attempt(client, "bob", "correct-horse-9", address="198.51.100.9")
    assert response.status_code == 302


def test_one_address_trying_many_usernames_is_locked_too(client, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 3
    make_user("carol", "reviewer")
    for name in ("u1", "u2", "u3"):
        assert attempt(client, name, "x").status_code == 200
    assert attempt(client, "carol", "correct-horse-9").status_code == 429
    # Unknown and known usernames get the same answer: no account enumeration.
    assert attempt(client, "nobody", "x").status_code == 429


def test_a_good_login_before_the_limit_still_works(client):
    make_user("dave", "staff")
    attempt(client, "dave", "wrong")
    assert attempt(client, "dave", "correct-horse-9").status_code == 302
