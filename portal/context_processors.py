from .access import RESELLER_NOTICE
from .forms import LanguageForm


def portal(request):
    user = getattr(request, "user", None)
    membership = None
    if user is not None and user.is_authenticated:
        membership = getattr(user, "membership", None) if hasattr(user, "membership") else None
    # The user menu's and the sign-in page's choice of language (portal/language_menu.html).
    return {"membership": membership, "reseller_notice": RESELLER_NOTICE, "language_form": LanguageForm()}
