"""The "API tokens" page: a person makes and revokes their own tokens for the API."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from campaign.models import ApiToken
from campaign.tokens import create_token, revoke_token, tokens_of


class TokenForm(forms.Form):
    name = forms.CharField(label="What it is for", max_length=100,
                           help_text="e.g. “nightly Shadowserver import” or “CERT IntelMQ”.")


@never_cache  # the page that shows a new token once must not sit in any cache
@require_http_methods(["GET", "POST"])
@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    new_token = ""
    if request.method == "POST" and form.is_valid():
        try:
            _token, new_token = create_token(user=request.user, name=form.cleaned_data["name"])
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            form = TokenForm()
    return render(request, "campaign/api_tokens.html", {
        "form": form, "new_token": new_token, "tokens": tokens_of(request.user),
    }, status=400 if form.errors else 200)


@require_POST
@login_required
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = ApiToken.objects.filter(pk=pk, user=request.user).first()
    if token is None:
        raise Http404("no such token")  # another person's token does not exist for you
    revoke_token(token=token, actor=request.user)
    messages.success(request, f"Token “{token.name}” revoked: it no longer opens the API.")
    return redirect("api_tokens")
