from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class MembershipBackend(ModelBackend):
    """Loads the signed-in user with their membership and partner in one query: every page needs them."""

    def get_user(self, user_id):
        user = get_user_model()._default_manager.select_related("membership__partner").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None
