import pytest

from campaign import states
from campaign.hosts import transition_host
from campaign.models import AuditEvent, Host


def test_every_state_has_transitions_defined():
    assert set(states.HOST_TRANSITIONS) == set(states.HOST_STATES)


def test_it_refuses_skipping_verification():
    with pytest.raises(states.IllegalTransition):
        states.check_transition(states.IMPORTED, states.NOTIFIED)


def test_notified_host_can_only_be_remediated():
    assert states.HOST_TRANSITIONS[states.NOTIFIED] == {states.REMEDIATED}


def test_only_the_fallback_chain_takes_a_notified_host_back_after_a_bounce():
    for target in (states.CONTACT_RESOLVED, states.NO_CONTACT):
        with pytest.raises(states.IllegalTransition):
            states.check_transition(states.NOTIFIED, target)
        states.check_transition(states.NOTIFIED, target, after_bounce=True)
    assert states.NOTIFIED not in states.sources_for(states.NO_CONTACT)  # bulk moves never


@pytest.mark.django_db
def test_transition_writes_audit_and_is_conditional(campaign):
    host = Host.objects.create(campaign=campaign, ip="82.44.79.141")
    stale = Host.objects.get(pk=host.pk)
    assert transition_host(host, states.VERIFIED_OPEN, reason="probe")
    host.refresh_from_db()
    assert host.state == states.VERIFIED_OPEN
    # A second worker holding the old state must not move the row again.
    assert transition_host(stale, states.NOT_OPEN) is False
    host.refresh_from_db()
    assert host.state == states.VERIFIED_OPEN
    event = AuditEvent.objects.get(action="host.transition")
    assert event.data["from"] == "imported" and event.data["to"] == "verified_open"
