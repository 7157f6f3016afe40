import os
import shutil
from datetime import UTC, datetime

# pytest-playwright keeps an asyncio loop in the main thread; the ORM must still run there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import pytest  # noqa: E402
import time_machine  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import translation  # noqa: E402

from tests import factories  # noqa: E402

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """On PostgreSQL, the test database's tables are left out of autovacuum, and a statement that runs past
    five minutes fails instead of hanging the suite.

    Every test's rows are rolled back, so autovacuum finds the tables empty of live rows but full of dead ones and
    records them as having 0 rows in pages that exist. The planner then takes every table for one row: a query
    joining six tables of a few hundred uncommitted rows each (the fuzz test's seeded demo) planned nested loops
    of cross products and ran for over an hour. A table never vacuumed is estimated from its size instead."""
    if connection.vendor == "postgresql":
        with django_db_blocker.unblock():
            with connection.cursor() as cursor:
                cursor.execute("SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema()")
                for (table,) in cursor.fetchall():
                    cursor.execute(
                        f"ALTER TABLE {table} SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)"
                    )
                cursor.execute("SELECT quote_ident(current_database())")
                (database,) = cursor.fetchone()
                cursor.execute(f"ALTER DATABASE {database} SET statement_timeout = '300s'")
            connection.close()  # the next connection starts with the database's settings
    yield


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The staff factories hash a password; the default hasher costs ~0.5 s per user on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def language_left_as_found():
    """A page in Traditional Chinese activates it for the thread (LocaleMiddleware sets a request's language and
    leaves it): every test starts in the language the one before it found, whatever pages it read."""
    with translation.override(translation.get_language()):
        yield


@pytest.fixture
def now():
    """Time is frozen for service and view tests: every rule is checked at a known instant."""
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Debian's Chromium: Playwright's own browser download is unreachable from these machines.
    return {
        **browser_type_launch_args,
        "executable_path": shutil.which("chromium") or "/usr/bin/chromium",
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


def run_worker():
    """Drains the background task queue with the real django-tasks-db worker."""
    call_command("db_worker", batch=True, startup_delay=False, verbosity=0)


@pytest.fixture
def worker():
    return run_worker


@pytest.fixture
def direct_partner(db):
    return factories.PartnerFactory(kind="direct_bill", name="Contoso Direct")


@pytest.fixture
def provider(db):
    return factories.PartnerFactory(kind="indirect_provider", name="Northwind Distribution")


@pytest.fixture
def sales(direct_partner):
    return factories.StaffFactory(membership__partner=direct_partner, membership__is_sales_agent=True)


@pytest.fixture
def signed_in(client, sales, now):
    """The test client signed in as the direct partner's sales agent, at the frozen `now`."""
    client.force_login(sales)
    return client


@pytest.fixture
def customer(direct_partner):
    return factories.CustomerFactory(partner=direct_partner, billing_country="US", segment="commercial")


@pytest.fixture
def saas(db):
    """An ISV SaaS offer without a free trial, 8.00 a license a month, set up at the publisher's site (S3)."""
    return factories.SkuFactory(
        isv=True,
        name="Fabrikam Backup",
        publisher_setup_url="https://fabrikam.example/setup",
        availabilities=[("P1Y", "monthly", "8.00")],
    )
