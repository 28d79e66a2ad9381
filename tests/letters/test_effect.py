"""The letters' effect: statistics against known values, and the report's `effect` JSON."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from campaign import states as host_states
from campaign.models import Host
from letters import effect, report, states
from letters.models import Batch, ContactDraw, ControlHost, Letter, LetterHost
from letters.stats import kaplan_meier, km_median, newcombe, wilson
from tests.letters.conftest import add_finding

TOL = 1e-4

# Wilson's interval solves |p̂ − p| = z·sqrt(p(1 − p)/n) for p, a quadratic with roots
#   (2np̂ + z² ∓ z·sqrt(z² + 4np̂(1 − p̂))) / (2(n + z²)),   z = 1.959964, z² = 3.841459.
# 0 of 10:   (0 + 3.841459 ∓ 1.959964·1.959964) / 27.682918           → 0, 0.277533
# 5 of 10:   (10 + 3.841459 ∓ 1.959964·sqrt(3.841459 + 10)) / 27.682918
#            = (13.841459 ∓ 7.291872) / 27.682918                     → 0.236593, 0.763407
# 62 of 100: (124 + 3.841459 ∓ 1.959964·sqrt(3.841459 + 94.24)) / 207.682918
#            = (127.841459 ∓ 19.410716) / 207.682918                  → 0.522098, 0.709024
WILSON_BY_HAND = {
    (0, 10): (0.0, 0.277533),
    (5, 10): (0.236593, 0.763407),
    (62, 100): (0.522098, 0.709024),
}

# Gehan (1965), remission times in weeks of 42 leukaemia patients; "+" marks censored.
SIX_MP = "6 6 6 6+ 7 9+ 10 10+ 11+ 13 16 17+ 19+ 20+ 22 23 25+ 32+ 32+ 34+ 35+"
PLACEBO = "1 1 2 2 3 4 4 5 5 8 8 8 8 11 11 12 12 15 17 22 23"


def table(times: str) -> list[tuple[int, int, int]]:
    return [(int(t.rstrip("+")), 0 if t.endswith("+") else 1, 1 if t.endswith("+") else 0)
            for t in times.split()]


@pytest.mark.parametrize(("successes", "n"), list(WILSON_BY_HAND))
def test_wilson_matches_the_hand_computed_interval(successes, n):
    lo, hi = wilson(successes, n)
    expected = WILSON_BY_HAND[(successes, n)]
    assert lo == pytest.approx(expected[0], abs=TOL)
    assert hi == pytest.approx(expected[1], abs=TOL)


def test_wilson_of_nothing_says_nothing():
    assert wilson(0, 0) == (0.0, 1.0)


def test_the_difference_matches_newcombes_published_example():
    # Newcombe (1998), Stat Med 17:873, example (a): 56/70 − 48/80, method 10.
    d, (lo, hi) = newcombe(56, 70, 48, 80)
    assert d == pytest.approx(0.2, abs=TOL)
    assert lo == pytest.approx(0.0524, abs=TOL)
    assert hi == pytest.approx(0.3339, abs=TOL)


def test_kaplan_meier_gives_the_textbook_medians_for_gehans_leukaemia_data():
    assert km_median(table(PLACEBO)) == 8
    assert km_median(table(SIX_MP)) == 23


def test_kaplan_meier_survival_matches_the_textbook_table():
    # 6-MP: S(6) = 18/21, S(7) = S(6)·16/17, …, S(13) = 0.6902, S(23) = 0.4482.
    curve = dict(kaplan_meier(table(SIX_MP)))
    assert curve[6] == pytest.approx(0.8571, abs=TOL)
    assert curve[7] == pytest.approx(0.8067, abs=TOL)
    assert curve[13] == pytest.approx(0.6902, abs=TOL)
    assert curve[23] == pytest.approx(0.4482, abs=TOL)


def test_kaplan_meier_has_no_median_while_most_are_still_open():
    assert km_median([(30, 2, 0), (60, 0, 8)]) is None


# -- the report ------------------------------------------------------------------------------


def _notified(campaign, bob, *, email, sent, fixed_after=None, language="de", country="DE"):
    host = add_finding(campaign, email=email, language=language, country=country)
    batch = Batch.objects.filter(campaign=campaign).first() or Batch.objects.create(
        campaign=campaign, created_by=bob, state=states.SENT)
    letter = Letter.objects.create(batch=batch, campaign=campaign, email=email, language=language,
                                   state=states.SENT, sent_at=sent, subject="s", body_text="t",
                                   body_html="h")
    LetterHost.objects.create(letter=letter, host=host)
    fields = {"state": host_states.NOTIFIED}
    if fixed_after is not None:
        fields = {"state": host_states.REMEDIATED, "remediated_at": sent + fixed_after}
    Host.objects.filter(pk=host.pk).update(**fields)
    return host


def _control(campaign, *, email, since, fixed_after=None, language="de", country="DE"):
    host = add_finding(campaign, email=email, language=language, country=country)
    draw = ContactDraw.objects.create(campaign=campaign, email=email, held_out=True, bucket=0.01,
                                      percent=10, reason="test")
    ControlHost.objects.create(campaign=campaign, host=host, draw=draw, since=since,
                               remediated_at=since + fixed_after if fixed_after else None)
    return host


@pytest.fixture
def measured(campaign, bob):
    """12 notified hosts (9 fixed: 3 after 10 days, 6 after 40) and 12 controls (3 fixed)."""
    start = timezone.now() - timedelta(days=100)
    for i in range(12):
        fixed = timedelta(days=10) if i < 3 else timedelta(days=40) if i < 9 else None
        _notified(campaign, bob, email=f"n{i}@example.de", sent=start, fixed_after=fixed)
    for i in range(12):
        fixed = timedelta(days=50) if i < 3 else None
        _control(campaign, email=f"c{i}@example.de", since=start, fixed_after=fixed)
    # Two small Japanese groups: too few for a breakdown row.
    _notified(campaign, bob, email="n@example.jp", sent=start, language="ja", country="JP")
    _control(campaign, email="c@example.jp", since=start, language="ja", country="JP")


@pytest.mark.django_db
def test_the_effect_compares_notified_hosts_with_the_control_group(campaign, measured):
    found = effect.campaign_effect(campaign)
    assert found["notified"]["hosts"] == 13 and found["notified"]["remediated"] == 9
    assert found["control"]["hosts"] == 13 and found["control"]["remediated"] == 3
    assert found["notified"]["rate"] == round(9 / 13, 4)
    assert found["notified"]["ci95"] == [round(v, 4) for v in wilson(9, 13)]
    d, (lo, hi) = newcombe(9, 13, 3, 13)
    assert found["difference"] == {"rate": round(d, 4), "ci95": [round(lo, 4), round(hi, 4)]}
    # Notified: 3 of 13 fixed by day 10 (S = 10/13), 6 more by day 40 (S = 4/13): median 40.
    assert found["notified"]["median_days"] == 40
    assert found["control"]["median_days"] is None  # 10 of 13 still open at the cut-off
    assert found["curves"]["notified"] == [[10, round(3 / 13, 4)], [40, round(9 / 13, 4)]]
    assert found["curves"]["control"] == [[50, round(3 / 13, 4)]]
    assert [row["language"] for row in found["by_language"]] == ["de"]
    assert [row["country"] for row in found["by_country"]] == ["DE"]
    assert found["by_language"][0]["notified"]["hosts"] == 12


@pytest.mark.django_db
def test_campaign_report_json_carries_the_effect(campaign, measured, capsys):
    call_command("campaign_report", campaign.slug, "--json")
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"rows", "effect"}
    assert out["effect"]["notified"]["hosts"] == 13
    assert set(out["effect"]["control"]) >= {"hosts", "remediated", "rate", "ci95"}
    assert out["rows"][-1]["country"] == "all" and out["rows"][-1]["notified"] == 13


@pytest.mark.django_db
def test_the_effect_of_a_campaign_without_a_control_group_has_no_difference(campaign):
    found = effect.campaign_effect(campaign)
    assert found["control"]["hosts"] == 0 and found["difference"] is None


@pytest.mark.django_db
def test_the_kept_report_rows_equal_the_source_tables(campaign, measured):
    Letter.objects.filter(email__in=["n0@example.de", "n5@example.de"]).update(
        state=states.DELIVERED, delivered_at=timezone.now())
    Letter.objects.filter(email="n1@example.de").update(state=states.BOUNCED)
    # Two ways: the kept per-host rows, one query on the source tables.
    assert report.campaign_report(campaign) == report.campaign_report(
        campaign, from_source=True)
    rows = {(r["country"], r["language"]): r for r in report.campaign_report(campaign)}
    assert rows[("DE", "de")]["delivered"] == 2 and rows[("DE", "de")]["bounced"] == 1
    assert rows[("DE", "de")]["median_days_to_remediation"] == 40.0
