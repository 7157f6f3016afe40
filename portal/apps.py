from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.backends.signals import connection_created
from django.utils.translation import gettext_lazy as _


def unicode_upper(value):
    """SQL's UPPER() as PostgreSQL's does it, for every script: SQLite's own changes only ASCII letters."""
    return value.upper() if isinstance(value, str) else value


def sqlite_unicode_upper(sender, connection, **kwargs):
    """On SQLite, UPPER() is Python's (deterministic, so generated columns may use it): the search's names in
    capitals (portal.search) fold "Équipe" and "ωmega" as PostgreSQL folds them, on both sides of a comparison."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("upper", 1, unicode_upper, deterministic=True)


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = _("Partners and customers")

    def ready(self):
        connection_created.connect(sqlite_unicode_upper, dispatch_uid="portal.sqlite_unicode_upper")


class PortalAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the portal's site, which scopes every admin (portal.admin_site)."""

    default = False  # not the portal app's own config: INSTALLED_APPS names it in place of "django.contrib.admin"
    default_site = "portal.admin_site.PortalAdminSite"
