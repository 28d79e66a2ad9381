"""Forms for the letter pages: input checking only; the services do the work (and re-check
permissions and the four-eyes rule, whatever a form or a page allowed)."""

from __future__ import annotations

from django import forms

from letters.languages import LANGUAGE_NAMES, LANGUAGES, bcp47
from letters.states import LETTER_STATES

LANGUAGE_CHOICES = [(code, f"{LANGUAGE_NAMES[code]} ({bcp47(code)})") for code in LANGUAGES]


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


class SendForm(forms.Form):
    """The step before letters leave: the sender ticks that they mean these N letters to M
    recipients. `letters` carries the N the page showed, so a batch that changed since (a
    letter taken out, a worker that sent some) is shown again instead of sent unseen."""

    confirm = forms.BooleanField(
        required=True, error_messages={"required": "Tick the box to confirm the sending."})
    letters = forms.IntegerField(widget=forms.HiddenInput, min_value=0)

    def __init__(self, *args, letters: int, recipients: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.expected = letters
        self.fields["letters"].initial = letters
        self.fields["confirm"].label = (
            f"I confirm sending {letters} letter{'s' if letters != 1 else ''} to {recipients} "
            f"recipient{'s' if recipients != 1 else ''}")

    def clean_letters(self) -> int:
        if self.cleaned_data["letters"] != self.expected:
            raise forms.ValidationError(
                f"The batch changed since this page was shown: it now has {self.expected} "
                "letters to send. Check them and confirm again.")
        return self.cleaned_data["letters"]

    def clean(self):
        cleaned = super().clean()
        # The hidden field's error would be invisible: show it above the form.
        if "letters" in self.errors:
            self.add_error(None, self.errors.pop("letters"))
        return cleaned


class RemoveLetterForm(forms.Form):
    reason = forms.CharField(label="Why take it out?", max_length=1000,
                             widget=forms.Textarea(attrs={"rows": 2}))


class LetterFilterForm(forms.Form):
    state = forms.ChoiceField(required=False, choices=[("", "Any state")]
                              + [(s, s) for s in LETTER_STATES])


class PostedForm(forms.Form):
    posted_on = forms.DateField(label="Posted on", widget=forms.DateInput(attrs={"type": "date"}),
                                help_text="The day the letters left (the post office's date).")


class ReturnedForm(forms.Form):
    reason = forms.CharField(label="What the post says", max_length=500,
                             help_text="E.g. addressee unknown, moved, refused.")
    returned_on = forms.DateField(label="Returned on", required=False,
                                  widget=forms.DateInput(attrs={"type": "date"}))
