"""tests/html_forms.py reads a page's forms as a browser submits them: the fuzz test's requests depend on it."""

from tests.html_forms import forms_on, links_on

PAGE = """
<form method="post" action="/cart/purchase/" id="purchase-form">
  <input type="hidden" name="csrfmiddlewaretoken" value="T"><input type="hidden" name="version" value="7">
  <input type="number" name="quantity" value="3"><input name="email" type="email" required>
  <input name="domain" placeholder="contoso.onmicrosoft.com" required>
  <select name="term"><option value="P1M">Monthly</option><option value="P1Y" selected>Annual</option></select>
  <select name="frequency"><option value="x" disabled>-</option><option value="monthly">Monthly</option></select>
  <input type="checkbox" name="attest" required><input type="checkbox" name="newsletter" value="yes">
  <input type="radio" name="when" value="now" disabled><input type="radio" name="when" value="later">
  <input name="off" value="1" disabled><textarea name="note">Hello</textarea>
  <button type="submit">Purchase</button>
</form>
<select name="reseller" form="purchase-form"><option value="">None</option><option value="4">Adatum</option></select>
<button type="submit" form="purchase-form" formaction="/cart/reseller/">Save reseller</button>
<form method="get" action="#quantity" hx-get="/panel/" hx-vals='{"renewal_draft": "1"}'>
  <input name="quantity" value="5"><button type="submit" name="go" value="preview">Preview</button>
</form>
<form method="post" action="https://publisher.example/setup"><input name="x" value="1"></form>
<a href="?page=2">Next</a> <a href="#top">Top</a> <a href="https://elsewhere.example/">Away</a>
"""


def test_a_form_is_read_as_a_browser_submits_it():
    purchase, reseller, preview, panel = forms_on(PAGE, "/cart/?tab=1")
    # the posted pairs: hidden fields, what is selected, required boxes checked, a chosen radio, filled required
    # fields (their example, or a value of their type); no disabled field, no unchecked box
    assert (purchase.method, purchase.action, purchase.htmx) == ("post", "/cart/purchase/", False)
    assert purchase.data() == [
        ("csrfmiddlewaretoken", "T"),
        ("version", "7"),
        ("quantity", "3"),
        ("email", "someone@example.com"),
        ("domain", "contoso.onmicrosoft.com"),
        ("term", "P1Y"),
        ("frequency", "monthly"),
        ("attest", "on"),
        ("when", "later"),
        ("note", "Hello"),
        ("reseller", ""),
    ]
    # and every field it has, sent or not, to fuzz
    assert purchase.names() == [
        "csrfmiddlewaretoken",
        "version",
        "quantity",
        "email",
        "domain",
        "term",
        "frequency",
        "attest",
        "newsletter",
        "when",
        "off",
        "note",
        "reseller",
    ]
    # a button of another form (form=, formaction=) submits that form elsewhere
    assert (reseller.action, reseller.data()) == ("/cart/reseller/", purchase.data())
    # a GET form replaces the query string; its named button is sent; htmx sends its hx-vals from its own URL
    assert (preview.method, preview.action, preview.data()) == ("get", "/cart/", [("quantity", "5"), ("go", "preview")])
    assert (panel.action, panel.htmx, panel.data()) == ("/panel/", True, [("quantity", "5"), ("renewal_draft", "1")])


def test_only_this_sites_links_and_forms_are_read():
    assert all(not form.action.startswith("http") for form in forms_on(PAGE, "/cart/"))
    assert links_on(PAGE, "/cart/?tab=1") == ["/cart/?page=2"]
