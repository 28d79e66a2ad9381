"""Forms for the probe pages: input checking only; the run is started by the service."""

from __future__ import annotations

from django import forms

from campaign import states


class ProbeRunForm(forms.Form):
    state = forms.ChoiceField(
        label="Hosts in state", required=False,
        choices=[("", "Any state")]
        + [(s, states.HOST_STATE_LABELS[s]) for s in states.HOST_STATES],
    )
    limit = forms.IntegerField(
        label="At most", required=False, min_value=1, max_value=1_000_000,
        help_text="Hosts, oldest first. Empty: every matching host.",
        widget=forms.NumberInput(attrs={"placeholder": "every host"}),
    )
