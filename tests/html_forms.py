"""The forms and links of a rendered page, read as a browser would submit them (html.parser, no browser).

A test builds its requests from what the page shows rather than from a hand-written dict, so a form that gains a
field (a hidden `version`, say) is posted with it without the test changing.
"""

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit, urlunsplit


@dataclass
class Field:
    name: str
    kind: str  # the input's type, "select" or "textarea"
    value: str  # what a browser would send if the user changed nothing ("" for an unchecked box)
    sent: bool  # whether a browser sends it as rendered (an unchecked box or a disabled field is not sent)
    choices: list[str] = field(default_factory=list)  # a select's option values, a radio group's values


@dataclass
class Form:
    """One way of submitting a form: its method and URL, and its fields in page order. A form whose buttons name
    another action or method (formaction, formmethod) gives one Form per way."""

    method: str  # "get" or "post"
    action: str  # a path with its query string, fragment dropped
    fields: list[Field]
    form_id: str = ""
    htmx: bool = False  # sent by htmx (hx-get, hx-post): with the HX-Request header and the form's hx-vals

    def data(self) -> list[tuple[str, str]]:
        """The name/value pairs a browser posts when the user submits it as rendered."""
        return [(f.name, f.value) for f in self.fields if f.sent]

    def names(self) -> list[str]:
        seen = []
        for f in self.fields:
            if f.name not in seen:
                seen.append(f.name)
        return seen


@dataclass
class _Open:
    attrs: dict
    fields: list[Field] = field(default_factory=list)
    buttons: list[dict] = field(default_factory=list)


def _typed(kind: str, attrs: dict) -> str:
    """What a person types into an empty required field (a browser submits nothing until they do): its example
    (placeholder), else a value of its type."""
    if attrs.get("placeholder"):
        return attrs["placeholder"]
    return {"email": "someone@example.com", "number": attrs.get("min") or "1", "date": "2026-12-31"}.get(kind, "Fuzz")


@dataclass
class _Select:
    field: Field
    owner: object  # the open form, a form id, or None
    selected: str | None = None
    first: str | None = None


class _PageParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[_Open] = []
        self.by_id: dict[str, _Open] = {}
        self.outside: list[tuple[str, Field | dict]] = []  # fields and buttons with a form="id" attribute
        self.links: list[str] = []
        self._form: _Open | None = None
        self._select: _Select | None = None
        self._option: dict | None = None
        self._option_text = ""
        self._textarea: tuple[Field, _Open | str | None] | None = None

    def _owner(self, attrs: dict):
        return attrs["form"] if "form" in attrs else self._form

    def _add(self, owner, item, *, button: bool = False):
        if isinstance(owner, str):
            self.outside.append((owner, ("button", item) if button else item))
        elif owner is not None:
            (owner.buttons if button else owner.fields).append(item)

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        elif tag == "form":
            self._form = _Open(attrs)
            self.forms.append(self._form)
            if attrs.get("id"):
                self.by_id[attrs["id"]] = self._form
        elif tag == "input":
            kind = attrs.get("type", "text").lower()
            if kind in ("submit", "image"):
                self._add(self._owner(attrs), attrs, button=True)
                return
            if "name" not in attrs or kind in ("button", "reset", "file"):
                return
            disabled = "disabled" in attrs
            if kind in ("checkbox", "radio"):
                # A box is sent when checked; a required one the user must check, so a submission checks it.
                checked = "checked" in attrs or ("required" in attrs and kind == "checkbox")
                value = attrs.get("value", "on")
                self._add(
                    self._owner(attrs),
                    Field(attrs["name"], kind, value, checked and not disabled, [] if disabled else [value]),
                )
            else:
                value = attrs.get("value", "")
                if not value and "required" in attrs:
                    value = _typed(kind, attrs)
                self._add(self._owner(attrs), Field(attrs["name"], kind, value, not disabled))
        elif tag == "button":
            if attrs.get("type", "submit").lower() == "submit":
                self._add(self._owner(attrs), attrs, button=True)
        elif tag == "select" and "name" in attrs:
            self._select = _Select(Field(attrs["name"], "select", "", "disabled" not in attrs), self._owner(attrs))
        elif tag == "option" and self._select is not None:
            self._option = attrs
            self._option_text = ""
        elif tag == "textarea" and "name" in attrs:
            self._textarea = (Field(attrs["name"], "textarea", "", "disabled" not in attrs), self._owner(attrs))

    def handle_data(self, data):
        if self._option is not None:
            self._option_text += data
        if self._textarea is not None:
            self._textarea[0].value += data

    def _close_option(self):
        if self._option is not None and self._select is not None:
            select = self._select
            value = self._option.get("value", self._option_text.strip())
            select.field.choices.append(value)
            if "selected" in self._option:
                select.selected = value
            elif select.first is None and "disabled" not in self._option:
                select.first = value
        self._option = None

    def handle_endtag(self, tag):
        if tag == "option":
            self._close_option()
        elif tag == "select" and self._select is not None:
            self._close_option()
            select = self._select
            # As a browser: the selected option, else the first that can be chosen.
            select.field.value = select.selected if select.selected is not None else (select.first or "")
            self._add(select.owner, select.field)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self._add(self._textarea[1], self._textarea[0])
            self._textarea = None
        elif tag == "form":
            self._form = None


def _resolve(page_url: str, action: str) -> str:
    scheme, netloc, path, query, _fragment = urlsplit(urljoin(page_url, action))
    return urlunsplit(("", "", path, query, "")) if netloc in ("", "testserver") else ""


def _radio_groups(fields: list[Field]) -> list[Field]:
    """Radios of one name as one field: the checked value is sent; with none checked, the first one that can be
    checked (a required choice the user makes); its choices are every value of the group."""
    out, groups = [], {}
    for f in fields:
        if f.kind != "radio":
            out.append(f)
            continue
        group = groups.get(f.name)
        if group is None:
            group = groups[f.name] = Field(f.name, "radio", "", False, [])
            out.append(group)
        group.choices += f.choices
        if f.sent and not group.sent:
            group.value, group.sent = f.value, True
    for group in groups.values():
        if not group.sent and group.choices:
            group.value, group.sent = group.choices[0], True
    return out


def forms_on(html: str, page_url: str) -> list[Form]:
    """Every way of submitting every form of the page (`page_url` is the path it was read from)."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    for form_id, item in parser.outside:
        owner = parser.by_id.get(form_id)
        if owner is not None:
            if isinstance(item, tuple):
                owner.buttons.append(item[1])
            else:
                owner.fields.append(item)
    found = []
    for opened in parser.forms:
        attrs = opened.attrs
        method = attrs.get("method", "get").lower()
        action = attrs.get("action", attrs.get("hx-post", ""))
        fields = _radio_groups(opened.fields)
        # A form is submitted through one of its buttons (each may name its own action and method), or by Enter.
        ways = {
            (
                button.get("formmethod", method).lower(),
                button.get("formaction", action),
                (button["name"], button.get("value", "")) if button.get("name") else None,
            )
            for button in opened.buttons
        } or {(method, action, None)}
        # (A button without a name sorts before a named one of the same method and action.)
        ways = sorted(((m, a, s, False) for m, a, s in ways), key=lambda w: (w[0], w[1], w[2] or ("", "")))
        # htmx sends the same fields (and its hx-vals) from the form's own event, to its hx-get or hx-post URL.
        hx_vals = [Field(str(k), "hidden", str(v), True) for k, v in json.loads(attrs.get("hx-vals") or "{}").items()]
        ways += [(m, attrs[f"hx-{m}"], None, True) for m in ("get", "post") if attrs.get(f"hx-{m}")]
        for way_method, way_action, submitter, htmx in ways:
            url = _resolve(page_url, way_action)
            if not url:
                continue  # another site's form
            if way_method == "get":
                url = urlsplit(url).path  # a browser replaces the action's query string with the form's fields
            way_fields = fields + (hx_vals if htmx else [])
            if submitter is not None:
                way_fields = way_fields + [Field(submitter[0], "submit", submitter[1], True)]
            found.append(Form(way_method, url, way_fields, attrs.get("id", ""), htmx))
    return found


def links_on(html: str, page_url: str) -> list[str]:
    """The page's links to this site, as paths with their query strings."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return [url for url in (_resolve(page_url, href) for href in parser.links if not href.startswith("#")) if url]
