"""Production settings: `check --deploy` is clean, HTTPS is enforced when debug is off, and the demo's
environment (Makefile DEMO_ENV) still serves plain HTTP on 127.0.0.1.

Settings are read from the environment when portal.settings is imported, so each case runs Django in a
subprocess with exactly the environment a deployment would have.
"""

import json
import os
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What portal.settings reads; none of it may leak in from the shell that runs the tests.
SETTINGS_VARIABLES = ("DATABASE_URL", "ALLOWED_HOSTS")


def clean_environment(tmp_path, **variables) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PORTAL_")) and k not in SETTINGS_VARIABLES
    }
    # The system checks open the database (JSONField support): a throwaway SQLite file.
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'check.sqlite3'}"
    env.update(variables)
    return env


def production_environment(tmp_path, **variables) -> dict[str, str]:
    return clean_environment(
        tmp_path,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="portal.example.com",
        **variables,
    )


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


HTTPS_SETTINGS = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
)


def https_settings(env: dict[str, str]) -> dict:
    printed = run_manage(
        env,
        "shell",
        "--no-imports",
        "-c",
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {HTTPS_SETTINGS!r}}}))",
    )
    assert printed.returncode == 0, printed.stderr
    return json.loads(printed.stdout)


def test_check_deploy_under_production_settings_reports_nothing(tmp_path):
    # given the environment of a production deployment: debug off, its own key, its host
    env = production_environment(tmp_path)

    # when Django's deployment checklist runs, failing on any warning
    result = run_manage(env, "check", "--deploy", "--fail-level", "WARNING")

    # then no issue at all: HSTS (W004, W005) and the SSL redirect (W008) included; W021 (not preloaded) is
    # silenced by choice (portal/settings.py)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "System check identified no issues (1 silenced).\n"


def test_debug_off_enforces_https_with_a_year_of_hsts(tmp_path):
    assert https_settings(production_environment(tmp_path)) == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }


def test_behind_a_tls_terminating_proxy_x_forwarded_proto_is_trusted_only_when_asked(tmp_path):
    # given a proxy that terminates TLS, sets X-Forwarded-Proto and redirects HTTP itself
    env = production_environment(
        tmp_path, DJANGO_SECURE_PROXY_SSL_HEADER="1", DJANGO_SSL_REDIRECT="0", DJANGO_HSTS_SECONDS="3600"
    )
    # then Django trusts the header, leaves the redirect to the proxy and sends the HSTS max-age asked for
    assert https_settings(env) == {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }


def test_preload_when_asked_is_no_longer_silenced(tmp_path):
    # given the domain's owner opts into the preload list
    env = production_environment(tmp_path, DJANGO_HSTS_PRELOAD="1")
    # then check --deploy is still clean, with nothing silenced
    result = run_manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert (result.returncode, result.stderr, result.stdout) == (
        0,
        "",
        "System check identified no issues (0 silenced).\n",
    )


def demo_environment() -> dict[str, str]:
    """DEMO_ENV as `make demo` passes it to the server, read from the Makefile itself."""
    printed = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", "print-demo-env: ; @echo $(DEMO_ENV)", "print-demo-env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert printed.returncode == 0, printed.stderr
    return dict(assignment.split("=", 1) for assignment in shlex.split(printed.stdout))


def test_the_demo_environment_serves_plain_http_with_debug_off(tmp_path):
    # given the demo's environment from the Makefile (debug off, plain HTTP on 127.0.0.1)
    demo = demo_environment()
    assert demo["DJANGO_DEBUG"] == "0"

    # then nothing redirects to HTTPS or needs it: no redirect, no HSTS, cookies over HTTP
    assert https_settings(clean_environment(tmp_path, **demo)) == {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
    }
