"""Helpers for the real-browser tests: signing in through the form, catalog data, and a real
background worker running next to the live server.

Every test module here marks itself `browser` and `django_db(transaction=True)`: the live
server runs in other threads, so the data must be committed for it to see it.
"""

import os
import re
import threading
from contextlib import nullcontext
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connections
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from playwright.sync_api import Page, expect

from tests import factories

SHOTS_DIR = "/tmp/shots"
# Subscription tests pin the clock here; it keeps ticking, shared by the test and the live server.
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    """2026-11-25 12:00 UTC for the test, the live server and the worker alike; time still passes."""
    os.makedirs(SHOTS_DIR, exist_ok=True)
    with time_machine.travel(NOW, tick=True):
        yield NOW


@pytest.fixture
def contoso(clock):
    """A direct-bill partner, its sales agent and a customer."""
    partner = factories.PartnerFactory(kind="direct_bill", name="Contoso Direct")
    agent = factories.staff(partner, "sales_agent")
    customer = factories.CustomerFactory(partner=partner, company_name="Fabrikam Ltd", billing_country="US")
    return agent, customer


def e3_subscription(customer, *, started, quantity=10, e3=None, **extra):
    """Microsoft 365 E3, 1 year billed monthly at 10.00 USD a license."""
    e3 = e3 or make_offer("Microsoft 365 E3", prices=[("P1Y", "monthly", "10.00")])
    return factories.subscribe(customer, e3, started=started, quantity=quantity, **extra)


def props_value(page: Page, term: str):
    """The <dd> next to a <dt> of the subscription page's properties."""
    return page.locator("dl.props dt", has_text=re.compile(rf"^{re.escape(term)}$")).locator(
        "xpath=following-sibling::dd[1]"
    )


def open_panel(page: Page, name: str, *, javascript: bool = True):
    """Opens a subscription's side panel ("Change licenses", "Manage renewal", "Check upgrades", "Convert
    trial") from the command bar, like a partner does, and returns it once it has slid in. Without
    JavaScript the button leads to the same section of the page (or page), which is returned."""
    link = page.get_by_role("toolbar", name="Subscription actions").get_by_role("link", name=name)
    target = link.get_attribute("href")
    link.click()
    if not javascript:
        return page.locator(target) if target.startswith("#") else page.locator("main")
    panel = page.locator(".side-panel.open")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("role", "dialog")
    return panel


# ---------------------------------------------------------------- signing in


def sign_in(page: Page, base_url: str, user, password: str = factories.PASSWORD) -> None:
    """Signs in through the login form, like a partner does, and waits for Home."""
    page.goto(f"{base_url}/login/")
    fill_sign_in_form(page, user.username, password)
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Good to see you"))


def fill_sign_in_form(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


# ---------------------------------------------------------------- catalog data


def make_offer(
    name: str,
    *,
    isv: bool = False,
    billing_type: str = "license",
    category: str = "enterprise",
    trial: bool = False,
    countries: str = "",
    prices=None,
):
    """One SKU with its own product, published by Microsoft or by the ISV "Fabrikam Software"."""
    publisher = (
        factories.PublisherFactory(name="Fabrikam Software", is_microsoft=False)
        if isv
        else factories.PublisherFactory(name="Microsoft", is_microsoft=True)
    )
    product = factories.ProductFactory(name=name, publisher=publisher, billing_type=billing_type, category=category)
    return factories.SkuFactory(
        product=product, name=name, is_trial=trial, available_countries=countries, availabilities=prices
    )


def offer_card(page: Page, name: str):
    """The catalog card of one offer, found by its heading."""
    return page.locator("#results article.offer").filter(has=page.get_by_role("heading", name=name, exact=True))


# ---------------------------------------------------------------- background worker


class _SerialisedApp:
    """Runs the live server's requests one at a time with the worker (shared SQLite connection)."""

    def __init__(self, app, lock):
        self.app, self.lock = app, lock

    def __call__(self, environ, start_response):
        with self.lock:
            return self.app(environ, start_response)


class BackgroundWorker:
    """The real django-tasks-db worker, draining the queue every 0.5 s in a background thread.

    It uses django_tasks_db's own Worker loop (what `manage.py db_worker --batch` runs), minus the
    signal handlers, which Python only allows in the main thread.

    On PostgreSQL or a file-based SQLite test database the thread has its own connection, closed
    after every round, and runs truly in parallel with the live server. On SQLite's in-memory test
    database every thread must share the test's one connection (as the live server itself does),
    so the worker and the live server's requests then take turns through one lock.
    """

    def __init__(self, live_server, interval: float = 0.5):
        self.live_server = live_server
        self.interval = interval
        self.errors: list[BaseException] = []
        self.rounds = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shared = {alias: conn for alias, conn in live_server.thread.connections_override.items()}
        self._lock = threading.RLock() if self._shared else None
        self._httpd_app = None

    @property
    def lock(self):
        """Hold this around ORM use in the test's own thread while the worker runs."""
        return self._lock or nullcontext()

    def start(self) -> None:
        assert self._thread is None, "the worker is already running"
        if self._lock is not None:
            httpd = self.live_server.thread.httpd
            self._httpd_app = httpd.get_app()
            httpd.set_app(_SerialisedApp(self._httpd_app, self._lock))
            for conn in self._shared.values():
                conn.inc_thread_sharing()
        self._thread = threading.Thread(target=self._run, name="db-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for alias, conn in self._shared.items():
            connections[alias] = conn
        try:
            while not self._stop.is_set():
                with self.lock:
                    Worker(
                        queue_names=["default"],
                        interval=0,
                        batch=True,
                        backend_name="default",
                        startup_delay=False,
                        max_tasks=None,
                        worker_id=get_random_string(32),
                        excluded_queue_names=[],
                    ).run()
                    self.rounds += 1
                if not self._shared:
                    connections.close_all()
                self._stop.wait(self.interval)
        except BaseException as error:  # reported by the fixture, not lost in the thread
            self.errors.append(error)
        finally:
            if not self._shared:
                connections.close_all()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the background worker did not stop"
        if self._httpd_app is not None:
            self.live_server.thread.httpd.set_app(self._httpd_app)
            for conn in self._shared.values():
                conn.dec_thread_sharing()
        self._thread = None

    def failures(self) -> str:
        """The worker's own crash and every failed task's traceback, for an assertion message."""
        with self.lock:
            failed = [
                f"{path}:\n{traceback}"
                for path, traceback in DBTaskResult.objects.failed().values_list("task_path", "traceback")
            ]
        return "\n".join([repr(e) for e in self.errors] + failed)


@pytest.fixture
def task_worker(live_server, transactional_db):
    """A real background worker for the live server's database; call `.start()` to run it."""
    worker = BackgroundWorker(live_server)
    yield worker
    worker.stop()
    assert not worker.errors, f"the background worker crashed: {worker.errors!r}"


def open_subscription(page: Page, customer, name: str) -> None:
    """Customers › the customer › the subscription's row link, like a partner gets there."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    page.get_by_role("link", name=customer.company_name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(customer.company_name)
    page.locator("table.list").get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)


def status_bars(page: Page):
    return page.locator(".messages [role=status]")
