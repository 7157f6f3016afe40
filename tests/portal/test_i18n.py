"""The translations: every catalog complete (msgfmt --statistics), one for each place that has marked strings, and
each up to date with its sources (what makemessages would extract is what the catalog holds); pages speak the
language chosen; numbers and money grouped as the language writes them."""

import os
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from portal.models import Membership
from portal.templatetags.portal_tags import countdown, money, number

ROOT = Path(settings.BASE_DIR)
SKIPPED_DIRS = {".venv", "build", "var", ".git", "node_modules", "staticfiles", "__pycache__", ".pytest_cache"}
# The catalogs of the apps whose Python is translated here; locale/ (the templates') and any other app's catalog
# are required as soon as their sources carry a marked string (test_every_catalog_is_up_to_date_with_its_sources).
APP_CATALOGS = ["portal", "catalog", "api"]
MSGFMT = shutil.which("msgfmt") or "/usr/bin/msgfmt"


def catalogs(root: Path) -> dict[str, Path]:
    """Every .po under locale/ and <dir>/locale/, by its path relative to `root`."""
    found = {}
    for path in root.rglob("*.po"):
        relative = path.relative_to(root)
        if SKIPPED_DIRS & set(relative.parts) or "locale" not in relative.parts:
            continue
        found[str(relative)] = path
    return found


def msgids(path: Path) -> set[tuple[str, str]]:
    """The (msgctxt, msgid) of each live entry of a .po (obsolete `#~` entries and the header left out)."""
    entries, context, current, key = set(), "", None, None
    text = path.read_text(encoding="utf-8")

    def flush():
        nonlocal context, current
        if current is not None and current != "":
            entries.add((context, current))
        context, current = "", None

    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        match = re.match(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) "(.*)"$', line)
        if match:
            key = match.group(1)
            if key == "msgctxt":
                flush()
                context = _unquote(match.group(2))
            elif key == "msgid":
                if current is not None:
                    flush()
                current = _unquote(match.group(2))
            continue
        if line.startswith('"'):
            if key == "msgid":
                current += _unquote(line[1:-1])
            elif key == "msgctxt":
                context += _unquote(line[1:-1])
    flush()
    return entries


ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _unquote(text: str) -> str:
    """A .po string's escapes (\\n, \\t, \\", \\\\) read back; the rest is UTF-8 text as it is."""
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(0)), text)


def msgfmt_statistics(path: Path) -> dict[str, int]:
    """msgfmt's own count of a catalog's translated, fuzzy and untranslated messages (it checks formats too, -c)."""
    if not Path(MSGFMT).exists():
        pytest.fail(f"msgfmt is missing ({MSGFMT}): install gettext to check the catalogs")
    result = subprocess.run(
        [MSGFMT, "--statistics", "-c", "-o", os.devnull, str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"msgfmt refuses {path}: {result.stderr}"
    counts = {"translated": 0, "fuzzy": 0, "untranslated": 0}
    for amount, kind in re.findall(r"(\d+) (translated|fuzzy|untranslated)", result.stderr):
        counts[kind] = int(amount)
    assert counts["translated"] or counts["untranslated"] or counts["fuzzy"], f"msgfmt said: {result.stderr!r}"
    return counts


CATALOGS = catalogs(ROOT)


def test_the_apps_have_traditional_chinese_catalogs():
    for app in APP_CATALOGS:
        assert f"{app}/locale/zh_Hant/LC_MESSAGES/django.po" in CATALOGS, f"{app} has no zh_Hant catalog"


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_every_catalog_is_complete_with_nothing_fuzzy(name):
    counts = msgfmt_statistics(CATALOGS[name])
    assert counts["untranslated"] == 0 and counts["fuzzy"] == 0, f"{name}: {counts}"
    assert counts["translated"] > 0


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_every_catalog_says_its_language_and_plural_forms(name):
    header = CATALOGS[name].read_text(encoding="utf-8").split("\n\n", 1)[0]
    if "/zh_Hant/" in name:
        assert '"Language: zh_Hant\\n"' in header
        assert '"Plural-Forms: nplurals=1; plural=0;\\n"' in header
    assert "#, fuzzy" not in header


def test_msgfmt_counts_what_is_missing(tmp_path):
    # the check above would pass vacuously if its reading of msgfmt's report missed untranslated or fuzzy messages
    po = tmp_path / "django.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Sign in"\nmsgstr "登入"\n\nmsgid "Search"\nmsgstr ""\n\n'
        '#, fuzzy\nmsgid "Save"\nmsgstr "儲存"\n',
        encoding="utf-8",
    )
    assert msgfmt_statistics(po) == {"translated": 1, "fuzzy": 1, "untranslated": 1}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    """A copy of the sources with its catalogs as makemessages leaves them: what the sources mark, merged."""
    copy = tmp_path_factory.mktemp("sources") / "project"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(*SKIPPED_DIRS, "*.mo", "*.sqlite3", "*.json"))
    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hant", "--no-obsolete", "-v0"]
        + [arg for name in SKIPPED_DIRS for arg in ("--ignore", name)],
        cwd=copy,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"},
    )
    assert result.returncode == 0, result.stderr
    return copy


def test_every_catalog_is_up_to_date_with_its_sources(extracted):
    # given what makemessages extracts from the sources today
    fresh = catalogs(extracted)
    # then every place with marked strings has its catalog, holding exactly those strings
    assert set(fresh) <= set(CATALOGS), f"marked strings with no catalog: {sorted(set(fresh) - set(CATALOGS))}"
    for name, path in fresh.items():
        wanted, held = msgids(path), msgids(CATALOGS[name])
        assert not wanted - held, f"{name} lacks: {sorted(wanted - held)[:10]}"
        assert not held - wanted, f"{name} holds strings no source marks any longer: {sorted(held - wanted)[:10]}"


def test_the_check_finds_a_marked_string_missing_from_its_catalog(extracted, tmp_path):
    # the comparison above would pass vacuously if it read no entries
    portal_catalog = CATALOGS["portal/locale/zh_Hant/LC_MESSAGES/django.po"]
    assert ("", "Sign in first.") in msgids(portal_catalog)
    assert ("the object a stale change names", "cart") in msgids(portal_catalog)
    assert len(msgids(extracted / "portal/locale/zh_Hant/LC_MESSAGES/django.po")) > 100


# --- Pages in the language chosen ---------------------------------------------------------------


@pytest.mark.django_db
def test_the_sign_in_page_speaks_chinese_to_a_taiwan_browser_and_english_otherwise(client):
    chinese = client.get(reverse("portal:login"), headers={"accept-language": "zh-TW"})
    english = client.get(reverse("portal:login"), headers={"accept-language": "en-GB"})
    assert chinese.headers["Content-Language"] == "zh-hant"
    assert '<span class="language-menu-label" id="language-menu-label">語言</span>' in chinese.text
    assert english.headers["Content-Language"] == "en"
    assert '<span class="language-menu-label" id="language-menu-label">Language</span>' in english.text


@pytest.mark.django_db
def test_home_speaks_chinese_with_the_preference_and_english_without(signed_in, sales):
    english = signed_in.get(reverse("portal:home")).text
    Membership.objects.filter(user=sales).update(language="zh-hant")
    chinese = signed_in.get(reverse("portal:home")).text
    assert "Sales agent" in english and "銷售代理" not in english
    assert "銷售代理" in chinese and "Sales agent" not in chinese
    assert "語言" in chinese


@pytest.mark.django_db
def test_a_refusal_speaks_the_language_of_the_page(signed_in, sales, customer):
    # given a member who reads Chinese, adding to the cart a way to buy that is none of the listed ones
    Membership.objects.filter(user=sales).update(language="zh-hant")
    response = signed_in.post(
        reverse("catalog:cart-add", args=[customer.pk]), {"availability": "x", "quantity": "2", "version": "0"}
    )
    # then the refusal is in Chinese, and nothing was put in a cart
    assert response.status_code == 422
    assert '<div class="msgbar msgbar-error" role="alert">請選擇期限和計費頻率。</div>' in response.text
    assert "Choose a term" not in response.text
    assert not customer.carts.exists()


# --- Numbers and money ----------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_money_is_grouped_for_the_language_and_rounded_as_a_decimal(language):
    with translation.override(language):
        assert money(Decimal("1234567.455"), "USD") == "1,234,567.46 USD"
        assert money(Decimal("0.1") + Decimal("0.2"), "TWD") == "0.30 TWD"
        assert money(Decimal("-1234.5")) == "-1,234.50"
        assert money(None) == "—"
        assert number(12500) == "12,500"


def test_a_countdown_speaks_the_language(now):
    with translation.override("zh-hant"):
        assert countdown(now + timedelta(days=4, hours=6, minutes=1), now) == "剩餘 4 天 6 小時"
        assert countdown(now - timedelta(minutes=1), now) == "已結束"
    with translation.override("en"):
        assert countdown(now + timedelta(hours=3, minutes=12), now) == "3 h 12 min left"
