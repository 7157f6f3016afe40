from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = _("Partners and customers")


class PortalAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the portal's site, which scopes every admin (portal.admin_site)."""

    default = False  # not the portal app's own config: INSTALLED_APPS names it in place of "django.contrib.admin"
    default_site = "portal.admin_site.PortalAdminSite"
