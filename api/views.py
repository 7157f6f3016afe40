"""The user menu's API tokens page: make a token (its secret shown once), see when each was last used, revoke one."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from portal import access
from portal.errors import RuleViolation
from portal.forms import refuse

from . import tokens
from .forms import ApiTokenForm
from .models import ApiToken


def _page(request, form, *, secret: str = "", status: int = 200):
    access.membership(request.user)  # staff without a partner have nothing to reach through the API (403)
    now = timezone.now()
    return render(
        request,
        "api/tokens.html",
        {
            "form": form,
            "secret": secret,
            "tokens": [(t, t.state_at(now)) for t in ApiToken.objects.filter(user=request.user)],
        },
        status=status,
    )


def _blank(request):
    return ApiTokenForm(initial={"version": tokens.made_so_far(request.user)})


@require_http_methods(["GET", "HEAD", "POST"])
def token_list(request):
    if request.method != "POST":
        return _page(request, _blank(request))
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=422)
    now = timezone.now()
    data = form.cleaned_data
    try:
        token, secret = tokens.create_token(
            request.user, name=data["name"], expires_at=form.expires_at(now), now=now, version=data["version"]
        )
    except RuleViolation as violation:
        refuse(form, violation)
        return _page(request, form, status=violation.status)
    # The secret is in this answer only: not in a message or the session, never stored.
    response = _page(request, _blank(request), secret=secret, status=201)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def token_revoke(request, token_id):
    try:
        token = tokens.revoke_token(request.user, token_id, now=timezone.now())
    except ApiToken.DoesNotExist:
        raise Http404(gettext("No such token.")) from None
    messages.success(request, gettext("Revoked %(token)s: it no longer signs in to the API.") % {"token": token.name})
    return redirect("api:token-list")
