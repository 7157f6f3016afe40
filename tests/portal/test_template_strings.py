"""Every string a person reads in a template is marked for translation (issue 12, localisation).

The checker tokenizes each template under templates/ with Django's own template Lexer, drops what is
translated ({% translate %}, {% blocktranslate %} … {% endblocktranslate %}) or not shown
({% comment %} … {% endcomment %}, {# #}), stands one placeholder for every other tag and variable, and
reads what is left as HTML: any text holding a letter fails, and so does any readable attribute (title,
aria-label, placeholder, alt, a button's value, hx-confirm, data-confirm) holding a letter outside a
variable. Variables' string arguments to the filters that show them (default, default_if_none, yesno) must
be `_("…")`, and `pluralize` (English plurals only) is refused: plurals are `{% blocktranslate count %}`.

Named exclusions, as few as there are reasons:
- the brand "CSP Portal", the product's name, shown as it is in both languages (inside sentences it is
  part of the translated sentence);
- text inside <code>, <script> and <style>: machine syntax (header names, tokens), not words.
"""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.template.base import Lexer, TokenType

TEMPLATES_DIR = Path(settings.BASE_DIR) / "templates"
BRAND = "CSP Portal"
# One character that is no letter, standing for every variable and every tag that is not text; another for
# what is translated, which belongs in text or in a readable attribute, never among a tag's attributes.
HOLE = "\ue000"
TRANSLATED = "\ue001"
# data-direct and data-indirect: the purchase's attestation texts that static/js/portal.js shows.
READABLE_ATTRIBUTES = {
    "title",
    "aria-label",
    "placeholder",
    "alt",
    "hx-confirm",
    "data-confirm",
    "data-direct",
    "data-indirect",
    "data-label",  # a phone shows it beside each value of a list drawn as cards (portal.css)
}
BUTTON_INPUT_TYPES = {"submit", "button", "reset"}
LITERAL_ELEMENTS = {"code", "script", "style"}
SHOWING_FILTERS = ("default", "default_if_none", "yesno")
TRANSLATED_BLOCKS = {"blocktranslate": "endblocktranslate", "blocktrans": "endblocktrans"}
LETTER = re.compile(r"[^\W\d_]")


def has_letter(text: str) -> bool:
    return bool(LETTER.search(text.replace(BRAND, "")))


def shown(text: str) -> str:
    return text.replace(HOLE, "{…}").replace(TRANSLATED, "{…}")


class _ReadableText(HTMLParser):
    """Collects the readable text and attributes that hold a letter, with their line numbers."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.literal_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in LITERAL_ELEMENTS:
            self.literal_depth += 1
        attributes = dict(attrs)
        for name, value in attrs:
            readable = name in READABLE_ATTRIBUTES or (
                name == "value" and tag == "input" and (attributes.get("type") or "") in BUTTON_INPUT_TYPES
            )
            if readable and value and has_letter(value):
                self.found.append(f"line {self.getpos()[0]}: <{tag} {name}={shown(value)!r}>")
            if TRANSLATED in name or (not readable and TRANSLATED in (value or "")):
                self.found.append(f"line {self.getpos()[0]}: a translation among the attributes of <{tag}>")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in LITERAL_ELEMENTS:
            self.literal_depth -= 1

    def handle_endtag(self, tag):
        if tag in LITERAL_ELEMENTS and self.literal_depth:
            self.literal_depth -= 1

    def handle_data(self, data):
        if self.literal_depth:
            return
        # One report for each stretch of text between two tags or variables, on its own line.
        line = self.getpos()[0]
        for piece in re.split(f"[{HOLE}{TRANSLATED}]", data):
            if has_letter(piece):
                leading = piece[: len(piece) - len(piece.lstrip())]
                self.found.append(f"line {line + leading.count(chr(10))}: text {' '.join(piece.split())!r}")
            line += piece.count("\n")


def _variable_problems(token) -> list[str]:
    problems = []
    if re.search(r"\|\s*pluralize\b", token.contents):
        problems.append(f"line {token.lineno}: pluralize in {{{{ {token.contents} }}}} (use blocktranslate count)")
    for name, argument in re.findall(r"\|\s*(\w+)\s*:\s*(\"[^\"]*\"|'[^']*')", token.contents):
        if name in SHOWING_FILTERS and has_letter(argument):
            problems.append(f"line {token.lineno}: {name}:{argument} in {{{{ {token.contents} }}}} (use _(…))")
    return problems


def untranslated(source: str) -> list[str]:
    """What a person would read untranslated in a template's source: one line per string."""
    pieces, problems = [], []
    closing = None  # the end tag of the translated block or comment being skipped
    for token in Lexer(source).tokenize():
        command = token.contents.split()[0] if token.token_type == TokenType.BLOCK and token.contents else ""
        if closing:
            if command == closing:
                closing = None
                pieces.append(TRANSLATED)
            continue
        if token.token_type == TokenType.TEXT:
            pieces.append(token.contents)
            continue
        if token.token_type == TokenType.BLOCK and command in TRANSLATED_BLOCKS:
            closing = TRANSLATED_BLOCKS[command]
        elif token.token_type == TokenType.BLOCK and command == "comment":
            closing = "endcomment"
        elif token.token_type == TokenType.VAR:
            problems += _variable_problems(token)
        hole = TRANSLATED if command in {"translate", "trans"} else HOLE
        # Keeps the line numbers of what follows: a token's own newlines stay with its hole.
        pieces.append(hole + "\n" * token.contents.count("\n"))
    parser = _ReadableText()
    parser.feed("".join(pieces))
    parser.close()
    return problems + parser.found


def template_files() -> list[Path]:
    return sorted(p for p in TEMPLATES_DIR.rglob("*") if p.is_file() and p.suffix in {".html", ".txt"})


def test_the_walk_finds_every_template():
    names = {str(p.relative_to(TEMPLATES_DIR)) for p in template_files()}
    assert {"base.html", "403.html", "403_csrf.html", "404.html", "500.html"} <= names
    assert "subscriptions/email/relationship_invitation.txt" in names
    assert "admin/catalog/order_tasks.html" in names
    assert len(names) >= 40


@pytest.mark.parametrize("path", template_files(), ids=lambda p: str(p.relative_to(TEMPLATES_DIR)))
def test_every_readable_string_of_the_template_is_marked_for_translation(path):
    assert untranslated(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "snippet, expected",
    [
        ("<p>Hello</p>", "text 'Hello'"),
        ("<p>{{ x }} licenses</p>", "text 'licenses'"),
        ("{% if a %}<b>Cart</b>{% endif %}", "text 'Cart'"),
        ("<p>{% if a %}\n\n  Total{% endif %}</p>", "line 3: text 'Total'"),
        ('<input placeholder="Search customers">', "placeholder='Search customers'"),
        ('<a title="PartnerID {{ p }}">{{ p }}</a>', "title='PartnerID {…}'"),
        ('<nav aria-label="Main"></nav>', "aria-label='Main'"),
        ('<img alt="Logo">', "alt='Logo'"),
        ('<input type="submit" value="Save">', "value='Save'"),
        ('<button hx-confirm="Really?">{% translate "Go" %}</button>', "hx-confirm='Really?'"),
        ('<form data-confirm="Sure?"></form>', "data-confirm='Sure?'"),
        ('{{ d|default:"Never" }}', 'default:"Never"'),
        ('{{ on|yesno:"Active,Off" }}', 'yesno:"Active,Off"'),
        ("{% translate 'licenses' %}{{ n|pluralize }}", "pluralize"),
        ("{% translate 'Hi' %} there", "text 'there'"),
        ("{% blocktranslate %}Hi {{ n }}{% endblocktranslate %} and more", "text 'and more'"),
        ('<input {% if a %}{% translate "checked" %}{% endif %}>', "a translation among the attributes of <input>"),
        ("<td class=\"{% translate 'num' %}\"></td>", "a translation among the attributes of <td>"),
        ('<input type="hidden" value="{% translate "yes" %}">', "a translation among the attributes of <input>"),
    ],
)
def test_the_checker_fails_on_an_untranslated_snippet(snippet, expected):
    problems = untranslated(snippet)
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize(
    "snippet",
    [
        '{% load i18n %}<p>{% translate "Hello" %}</p>',
        "<p>{% blocktranslate trimmed with n=x %}\n  {{ n }} licenses\n{% endblocktranslate %}</p>",
        "{% blocktranslate count n=x %}{{ n }} license{% plural %}{{ n }} licenses{% endblocktranslate %}",
        '<input placeholder="{% translate "Search" %}" value="{{ q }}" type="search">',
        '<input type="submit" value="{% translate "Save" %}"><input type="hidden" value="yes">',
        "{% comment %}Why this is so{% endcomment %}{# a note #}<td>{{ a }} · — ›</td>",
        '<code>Authorization: Bearer</code><a class="brand" href="/">CSP Portal</a>',
        '{{ d|date:"Y-m-d H:i"|default:_("Never") }}{{ on|yesno:_("Active,Off") }}',
        "<script>let a = 1;</script><p>&mdash; &nbsp; 12.00</p>",
    ],
)
def test_the_checker_passes_translated_and_wordless_snippets(snippet):
    assert untranslated(snippet) == []


@pytest.mark.parametrize("path", ["base.html", "403_csrf.html", "500.html"])
def test_html_lang_follows_the_active_language(path):
    source = (TEMPLATES_DIR / path).read_text(encoding="utf-8")
    assert "{% get_current_language as LANGUAGE_CODE %}" in source
    assert '<html lang="{{ LANGUAGE_CODE }}">' in source
