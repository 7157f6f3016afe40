"""Settings for CSP Portal, read from the environment with safe defaults.

DATABASE_URL      sqlite:///path/to/file.sqlite3 (default: var/db.sqlite3) or
                  postgres://user:password@host:port/name
DJANGO_SECRET_KEY required when DJANGO_DEBUG is off
DJANGO_DEBUG      "1"/"true" turns debug on (default: on for local development)
DJANGO_SECURE_COOKIES  HTTPS-only cookies (default: on when debug is off)
DJANGO_SSL_REDIRECT    redirect plain HTTP to HTTPS (default: on when debug is off)
DJANGO_HSTS_SECONDS    Strict-Transport-Security max-age (default: one year when debug is off, else 0)
DJANGO_HSTS_INCLUDE_SUBDOMAINS  HSTS covers the host's subdomains too (default: on)
DJANGO_HSTS_PRELOAD    HSTS asks to be preloaded by browsers (default: off)
DJANGO_SECURE_PROXY_SSL_HEADER  trust X-Forwarded-Proto from a TLS-terminating proxy (default: off)
ALLOWED_HOSTS     comma-separated (default: localhost, 127.0.0.1)
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

DEFAULT_SECRET_KEY = "insecure-dev-key-do-not-use-in-production"


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def postgresql_options() -> dict:
    """psycopg 3 binds the values on the server and prepares a statement on its second execution in a connection
    (DATABASE_SERVER_SIDE_BINDING=0 and DATABASE_PREPARE_THRESHOLD=0 turn each off): PostgreSQL then plans a page's
    queries once per connection, not on every request. Measured with `make bench-pg` at 100,000 subscriptions: the
    subscription page's ten-table read spent 2.9 ms planning for 0.6 ms of execution; with both on, the subscription
    page went from 6.3x to 5.1x the floor, the lists from 3.5x to 3.1x, the catalog from 4.2x to 3.7x."""
    threshold = int(os.environ.get("DATABASE_PREPARE_THRESHOLD") or 2)
    return {
        "server_side_binding": env_bool("DATABASE_SERVER_SIDE_BINDING", True),
        # None: never prepared (Django's default, for connection poolers that can't keep prepared statements)
        "prepare_threshold": threshold or None,
    }


def database_from_url(url: str) -> dict:
    """Turns a DATABASE_URL into a Django DATABASES entry (SQLite or PostgreSQL only)."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # sqlite:///relative.sqlite3 or sqlite:////absolute/path.sqlite3
        path = unquote(parsed.path[1:] if parsed.path.startswith("/") else parsed.path)
        name = Path(path) if Path(path).is_absolute() else BASE_DIR / path
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            # WAL lets the worker and the web server read while the other writes.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": os.environ.get("TEST_SQLITE_NAME") or None},
        }
    if parsed.scheme in {"postgres", "postgresql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": 60,
            "OPTIONS": postgresql_options(),
        }
    raise ImproperlyConfigured(f"DATABASE_URL scheme {parsed.scheme!r} is not supported")


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", DEFAULT_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEFAULT_SECRET_KEY:
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY: the default key is refused when DJANGO_DEBUG is off.")

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h.strip()]

# The demo lists its sign-ins on the sign-in page; never on a real deployment.
DEMO_MODE = env_bool("PORTAL_DEMO", False)

# E-mail carries a relationship request's acceptance link to the customer's administrator (TF1). Production
# sends through SMTP (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS); local
# development and the demo write messages to the console instead (the demo also shows them on its simulated
# mailbox page). Never the console in production: the link in a message accepts for the customer.
if env_bool("PORTAL_EMAIL_CONSOLE", DEBUG or DEMO_MODE):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
else:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": os.environ.get("EMAIL_HOST", "localhost"),
                "port": int(os.environ.get("EMAIL_PORT", "25")),
                "username": os.environ.get("EMAIL_HOST_USER", ""),
                "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
                "use_tls": env_bool("EMAIL_USE_TLS", False),
                "timeout": 10,
            },
        }
    }
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "CSP Portal <no-reply@localhost>")

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",  # django.contrib.admin, every admin scoped (portal.admin_site)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_filters",
    "django_tasks_db",
    "ninja",  # the API's docs page, served from its own static files (no CDN)
    "portal",
    "catalog",
    "subscriptions",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After whitenoise: static files are not documents and need no policy. Outside the rest, so every page
    # carries it: error pages, CSRF refusals, redirects and the admin included.
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Django's LocaleMiddleware, after the user is known: a member's saved language beats the browser's.
    "portal.middleware.PreferredLanguageMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "api.middleware.ApiHeaders",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL", "sqlite:///var/db.sqlite3"))}

# Per worker, bounded: the catalog's offer facts (catalog/listing.py: 71 KB pickled at 2,000 offers, 341 KB at 10,000)
# and the catalog cards' template fragments (two per offer shown, about 1.1 KB together), every key holding the
# catalog's version. MAX_ENTRIES bounds a worker's cache whatever the number of offers (about 4 MB at most, the
# fragments of some 2,000 offers); LocMemCache culls a third of the entries when it is full.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "csp-portal",
        "TIMEOUT": 24 * 60 * 60,
        "OPTIONS": {"MAX_ENTRIES": 4000},
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
AUTHENTICATION_BACKENDS = ["portal.backends.MembershipBackend"]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:login"

# English, and Traditional Chinese as Partner Center's documentation has it (`../shared/seed/`): Django maps
# a browser's zh-TW or zh-HK to zh-hant. Catalogs: `locale/` for the templates, `<app>/locale/` for each
# app's Python; compiled by `make` (`compilemessages`), never committed. docs/glossary.md keeps the terms.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hant", "繁體中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Numbers and money grouped as each language writes them (portal/formats/<locale>/formats.py, read before Django's).
FORMAT_MODULE_PATH = ["portal.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
# Cookies travel over HTTPS only in production; the local demo serves plain HTTP on 127.0.0.1.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
# The language an anonymous visitor picked (portal.views.language_set): like the session's cookie, HTTPS-only
# outside debug; no script reads it.
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "portal.views.csrf_failure"

# HTTPS. With debug off every request is HTTPS: plain HTTP is redirected, and browsers are told (HSTS) to
# use nothing but HTTPS for this host for a year. `make demo` serves plain HTTP on 127.0.0.1 and turns
# these off (with the secure cookies) by environment; tests run with debug on.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "0" if DEBUG else "31536000"))
# The portal runs on a host of its own (portal.example.com), whose subdomains have no reason to speak HTTP;
# turn this off when the portal is served from a domain whose subdomains still serve plain HTTP.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading puts the whole registrable domain into browsers' built-in HTTPS-only list, which takes months
# to undo: a decision for the domain's owner, not a default. Without it check --deploy says W021 ("cannot
# be submitted to the preload list"), which is then the intended state and silenced as such.
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Behind a proxy that terminates TLS, Django sees plain HTTP: it must be told which header says the
# original request was HTTPS, or the SSL redirect loops and secure cookies are never sent. Only turn this
# on when the proxy sets X-Forwarded-Proto itself and drops any value a client sent.
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy on every response (django.middleware.csp): only this site's own scripts,
# stylesheets, images and XHR; no inline script or style (templates keep their CSS in static/css and
# their behaviour in static/js, and htmx's injected indicator <style> is turned off in base.html), no
# eval (so no hx-on attributes or js: values), no plugins, no framing, forms post only to this site.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# K8: the most subscriptions one customer may hold (live or pending) across the portal.
CSP_MAX_SUBSCRIPTIONS_PER_CUSTOMER = int(os.environ.get("CSP_MAX_SUBSCRIPTIONS_PER_CUSTOMER", "250"))
# K12: an unpurchased cart expires this many days after it was created.
CSP_CART_LIFETIME_DAYS = 7
# The API's rate for a partner without its own (api.models.PartnerRate): Partner Center's published limit.
CSP_API_REQUESTS_PER_MINUTE = int(os.environ.get("CSP_API_REQUESTS_PER_MINUTE", "500"))
# Webhooks go to public addresses only; loopback too in development, the demo and the tests (a receiver here).
CSP_WEBHOOKS_ALLOW_LOOPBACK = env_bool("CSP_WEBHOOKS_ALLOW_LOOPBACK", DEBUG or DEMO_MODE)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
