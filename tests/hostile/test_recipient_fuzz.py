"""The recipient's page is public: whoever holds a letter's link may post anything to its
forms. Whatever they post: never a 500, a redirect (done) or a 400 (refused, nothing kept),
and what is kept is text the database and the staff pages can hold.

Budget: examples(40) posts per form.
"""

from __future__ import annotations

from urllib.parse import quote_from_bytes, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from letters import recipient
from letters.models import ContactPreference, InboundMessage
from tests.conftest import examples
from tests.hostile.payloads import HOSTILE_STRINGS

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]

texts = st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=60),
                  st.sampled_from(["x" * 6000, "\x00" * 10, "Europe/Berlin", "de", "not_mine",
                                   "message", "1", "../../etc/localtime", "Europe/" + "a" * 300]))


def form(fields: dict) -> bytes:
    def quote(text: str) -> str:
        return quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe="")
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in fields.items()).encode()


@pytest.fixture
def page(sent_letter, settings):
    settings.RECIPIENT_RATE_LIMITS = {f"{kind}_{scope}": (10**6, 3600)
                                      for kind in ("feedback", "preferences", "retest")
                                      for scope in ("token", "ip")}
    return urlsplit(sent_letter.context["recipient_url"]).path


@settings(max_examples=examples(40))
@given(kind=st.one_of(st.sampled_from(list(recipient.FEEDBACK_KINDS)), texts), text=texts)
def test_any_reply_from_the_page_is_kept_as_text_or_refused(client, page, kind, text):
    before = InboundMessage.objects.count()
    response = client.post(page + "reply/", data=form({"kind": kind, "text": text}),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code in (302, 400), response.status_code
    meant = kind == recipient.NOT_MINE or (
        kind == recipient.MESSAGE and text.replace("\x00", "").strip())
    assert (response.status_code == 302) == bool(meant), (kind, text)
    if response.status_code == 400:
        assert InboundMessage.objects.count() == before
        return
    stored = InboundMessage.objects.order_by("-id").first()
    assert InboundMessage.objects.count() == before + 1
    assert "\x00" not in stored.text and len(stored.text) <= recipient.MAX_TEXT
    stored.text.encode("utf-8")


@settings(max_examples=examples(40))
@given(language=texts, days=st.sampled_from(["", "1", "0", "yes"]), zone=texts)
def test_any_preference_is_stored_valid_or_refused(client, page, language, days, zone):
    before = list(ContactPreference.objects.values_list("language", "time_zone"))
    response = client.post(page + "preferences/", content_type="application/x-www-form-urlencoded",
                           data=form({"letter_language": language, "business_days_only": days,
                                      "time_zone": zone}))
    assert response.status_code in (302, 400), response.status_code
    after = list(ContactPreference.objects.values_list("language", "time_zone"))
    if response.status_code == 400:
        assert after == before
    else:
        from letters.cadence import valid_time_zone
        from letters.languages import LANGUAGES

        for code, time_zone in after:
            assert code in ("", *LANGUAGES)
            assert time_zone == "" or valid_time_zone(time_zone)

