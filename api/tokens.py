"""Personal API tokens: made, revoked and checked here (the token pages and the API's authentication ask)."""

import hashlib
import secrets
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext

from portal import access
from portal.versions import StaleVersion

from .models import ApiToken

PREFIX = "cspp_"  # says what a leaked secret is (secret scanners match on such a prefix)
SHOWN_CHARS = 12  # the prefix kept in the clear: "cspp_" and 7 characters of the secret
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often: a read must not write each time


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def made_so_far(user) -> int:
    """The version of a user's set of tokens, which the tokens page's form carries: how many were ever made."""
    return ApiToken.objects.filter(user=user).count()


def create_token(
    user, *, name: str, expires_at: datetime | None, now: datetime, version: int | None = None
) -> tuple[ApiToken, str]:
    """A new token for `user` and its secret, which is shown once and never stored. Staff without a partner can't
    have one (`access.membership` refuses them: the API has nothing for them to act on).

    `version` is `made_so_far` as the page showed it: a form submitted twice (a double click, a resubmit) makes one
    token, and the second is refused (409) rather than making another the person never saw."""
    access.membership(user)
    with transaction.atomic():
        # The user's row is the lock: two submits of one form take turns, and the second counts the first's token.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        if version is not None and made_so_far(user) != version:
            raise StaleVersion(
                gettext("A token was already made from this page: see it in the list below. Nothing was made.")
            )
        secret, token = _new(user, name=name, expires_at=expires_at, now=now)
    return token, secret


def _new(user, *, name, expires_at, now):
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=secret[:SHOWN_CHARS],
        key_hash=digest(secret),
        created_at=now,
        expires_at=expires_at,
    )
    return secret, token


def revoke_token(user, token_id: int, *, now: datetime) -> ApiToken:
    """Revokes one of the user's own tokens (another's answers DoesNotExist, which the page turns into 404).
    Revoking twice changes nothing."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token_id, user=user)
        if token.revoked_at is None:
            token.revoked_at = now
            token.save(update_fields=["revoked_at"])
    return token


def authenticate(secret: str, *, now: datetime) -> ApiToken | None:
    """The usable token with this secret, or None (unknown, revoked, expired, or its owner inactive)."""
    if not secret.startswith(PREFIX) or len(secret) > 100:
        return None
    # One query for what every request needs: the owner, the owner's partner (portal.access) and that partner's own
    # rate (api.protocol.rate_of), so a request's authentication and its rate check add no reads of their own.
    token = (
        ApiToken.objects.select_related("user__membership__partner__api_rate").filter(key_hash=digest(secret)).first()
    )
    if token is None or not token.usable_at(now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
