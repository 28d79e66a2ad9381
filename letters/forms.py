"""Forms for the letter pages: input checking only; the services do the work (and re-check
permissions and the four-eyes rule, whatever a form or a page allowed)."""

from __future__ import annotations

from django import forms

from letters.languages import LANGUAGE_NAMES, LANGUAGES
from letters.states import LETTER_STATES

LANGUAGE_CHOICES = [(code, f"{LANGUAGE_NAMES[code]} ({code})") for code in LANGUAGES]


class BatchBuildForm(forms.Form):
    country = forms.RegexField(
        label="Country", required=False, regex=r"^[A-Za-z]{2}$", max_length=2,
        error_messages={"invalid": "Use a two-letter country code, e.g. DE."},
        help_text="Only hosts in this country (two letters). Empty: every country.",
    )
    language = forms.ChoiceField(
        label="Letter language", required=False,
        choices=[("", "Any language")] + LANGUAGE_CHOICES,
    )
    max_letters = forms.IntegerField(
        label="At most", required=False, min_value=1, max_value=100_000,
        help_text="Letters (one per contact). Empty: every pending letter.",
        widget=forms.NumberInput(attrs={"placeholder": "every letter"}),
    )

    def clean_country(self) -> str:
        return (self.cleaned_data.get("country") or "").upper()


class ApproveForm(forms.Form):
    comment = forms.CharField(label="Comment (optional)", required=False, max_length=2000,
                              widget=forms.Textarea(attrs={"rows": 2}))


class RejectForm(forms.Form):
    comment = forms.CharField(
        label="Why reject?", max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required: the builder reads this to fix the batch.",
        error_messages={"required": "Say why the batch is rejected."},
    )

    def clean_comment(self) -> str:
        comment = self.cleaned_data["comment"].strip()
        if not comment:
            raise forms.ValidationError("Say why the batch is rejected.")
        return comment


class RemoveLetterForm(forms.Form):
    reason = forms.CharField(label="Why take it out?", max_length=1000,
                             widget=forms.Textarea(attrs={"rows": 2}))


class LetterFilterForm(forms.Form):
    state = forms.ChoiceField(required=False, choices=[("", "Any state")]
                              + [(s, s) for s in LETTER_STATES])
