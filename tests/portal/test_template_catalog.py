"""The templates' catalog, locale/zh_Hant/LC_MESSAGES/django.po: complete, none fuzzy, in step with the
templates, and used by the pages (issue 12, localisation).

The .mo files are not committed: `make messages` (compilemessages) makes them before the suite runs.
"""

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.utils.translation.template import templatize

from tests import factories
from tests.portal.test_template_strings import template_files

CATALOG = Path(settings.BASE_DIR) / "locale" / "zh_Hant" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def _unquote(line: str) -> str:
    return ast.literal_eval(line.strip())


def po_entries(path: Path) -> list[dict]:
    """The catalog's entries (the header included, first): msgid, msgid_plural, msgstr (a list), flags."""
    entries = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        entry = {"msgid": None, "msgid_plural": None, "msgstr": [], "flags": set(), "obsolete": False}
        field = None
        for line in block.splitlines():
            if line.startswith("#~"):
                entry["obsolete"] = True
            elif line.startswith("#,"):
                entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
            elif line.startswith("#"):
                continue
            elif match := re.match(r"(msgid_plural|msgid|msgstr(?:\[\d+\])?) (\".*\")$", line):
                field = match.group(1)
                if field.startswith("msgstr"):
                    entry["msgstr"].append(_unquote(match.group(2)))
                else:
                    entry[field] = _unquote(match.group(2))
            elif field.startswith("msgstr"):
                entry["msgstr"][-1] += _unquote(line)
            else:
                entry[field] += _unquote(line)
        if not entry["obsolete"]:
            entries.append(entry)
    return entries


def template_messages() -> set[tuple[str, str | None]]:
    """Every (msgid, msgid_plural) the templates mark, read as makemessages reads them (templatize)."""
    call = re.compile(r"\b(n?gettext)\(((?:u'(?:[^'\\]|\\.)*'|u\"(?:[^\"\\]|\\.)*\"|, )+)")
    literal = re.compile(r"u'(?:[^'\\]|\\.)*'|u\"(?:[^\"\\]|\\.)*\"")
    found = set()
    for path in template_files():
        for match in call.finditer(templatize(path.read_text(encoding="utf-8"), origin=str(path))):
            strings = [ast.literal_eval(s) for s in literal.findall(match.group(2))]
            found.add((strings[0], strings[1] if match.group(1) == "ngettext" else None))
    return found


@pytest.fixture(scope="module")
def entries():
    return po_entries(CATALOG)


def test_the_header_declares_traditional_chinese_with_one_plural_form(entries):
    header = entries[0]
    assert header["msgid"] == "" and "fuzzy" not in header["flags"]
    assert "Language: zh_Hant\n" in header["msgstr"][0]
    assert "Plural-Forms: nplurals=1; plural=0;\n" in header["msgstr"][0]


def test_every_message_is_translated_and_none_is_fuzzy(entries):
    untranslated = [e["msgid"] for e in entries[1:] if not all(e["msgstr"]) or not e["msgstr"]]
    fuzzy = [e["msgid"] for e in entries[1:] if "fuzzy" in e["flags"]]
    assert untranslated == [] and fuzzy == []


def test_every_translation_keeps_the_placeholders_of_its_message(entries):
    wrong = [
        (e["msgid"], text)
        for e in entries[1:]
        for text in e["msgstr"]
        if set(PLACEHOLDER.findall(text))
        != set(PLACEHOLDER.findall(e["msgid"])) | set(PLACEHOLDER.findall(e["msgid_plural"] or ""))
    ]
    assert wrong == []


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext's msgfmt (compilemessages needs it too)")
def test_msgfmt_counts_every_message_translated():
    result = subprocess.run(
        ["msgfmt", "--statistics", "--check", "-o", "/dev/null", str(CATALOG)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d+ translated messages\.\n", result.stderr), result.stderr


def test_the_catalog_holds_every_message_of_the_templates(entries):
    catalog = {(e["msgid"], e["msgid_plural"]) for e in entries[1:]}
    assert sorted(template_messages() - catalog) == []


def test_the_template_reader_finds_plurals_and_sentences():
    # the reader above is the test's own: it must see what makemessages sees, or the test above proves nothing
    messages = template_messages()
    assert ("Add subscription", None) in messages
    assert ("%(count)s offer", "%(count)s offers") in messages
    assert (
        'Order number <strong id="order-number">%(number)s</strong>, placed %(placed)s, first charges %(total)s '
        "in all. Its subscriptions are created in the background: each line below shows how far it is.",
        None,
    ) in messages
    assert len(messages) > 400


@pytest.mark.parametrize(
    "accept_language, lang, words",
    [
        ("en-US,en;q=0.9", "en", ["Sign in", "Username", "All times are UTC."]),
        ("zh-TW,zh;q=0.9", "zh-hant", ["登入", "使用者名稱", "所有時間皆為 UTC。"]),
    ],
)
def test_the_sign_in_page_reads_in_the_browsers_language(client, accept_language, lang, words):
    page = client.get("/login/", HTTP_ACCEPT_LANGUAGE=accept_language).content.decode()
    assert f'<html lang="{lang}">' in page
    assert all(word in page for word in words), words


@pytest.mark.django_db
def test_the_not_found_page_reads_in_the_browsers_language(client):
    client.force_login(factories.staff(factories.PartnerFactory(), "sales_agent"))
    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="zh-TW")
    page = response.content.decode()
    assert response.status_code == 404
    assert '<html lang="zh-hant">' in page and "<h1>找不到</h1>" in page and "前往您的客戶" in page
