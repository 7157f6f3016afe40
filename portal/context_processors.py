from .access import RESELLER_NOTICE


def portal(request):
    user = getattr(request, "user", None)
    membership = None
    if user is not None and user.is_authenticated:
        membership = getattr(user, "membership", None) if hasattr(user, "membership") else None
    return {"membership": membership, "reseller_notice": RESELLER_NOTICE}
