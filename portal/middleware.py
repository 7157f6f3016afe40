"""The language of every response: the signed-in person's preference, else Django's own choice (the language
cookie an anonymous visitor picked on the sign-in page, then the browser's Accept-Language, zh-TW and zh-HK mapping
to zh-hant, then English)."""

from django.middleware.locale import LocaleMiddleware
from django.utils import translation


class PreferredLanguageMiddleware(LocaleMiddleware):
    """LocaleMiddleware, after AuthenticationMiddleware so the user is known. Its response half stays as it is:
    Content-Language is the language activated here, and Vary: Accept-Language stays on every response, as a
    page without a preference depends on the header (one with a preference also varies on the session cookie)."""

    def process_request(self, request):
        super().process_request(request)
        preferred = preferred_language(getattr(request, "user", None))
        if preferred:
            translation.activate(preferred)
            request.LANGUAGE_CODE = translation.get_language()


def preferred_member(user):
    """The signed-in person's membership, whose `language` is their preference; None when signed out or for staff
    without one (the operator: their choice lives in the language cookie only)."""
    if user is None or not user.is_authenticated:
        return None
    # The sign-in backend loaded the membership with the user (None cached when there is none): no query here.
    return getattr(user, "membership", None) if hasattr(user, "membership") else None


def preferred_language(user) -> str:
    """The saved preference of a signed-in member ("" when none)."""
    member = preferred_member(user)
    return member.language if member is not None else ""
