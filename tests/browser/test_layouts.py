"""Screens at a laptop's 1366x768, a desktop's 1920x1080 and a phone's 390x844 (issue 12): every main page, the
subscription page's side panels and its dialogs, with a screenshot of each under test-results/screenshots/ and
nothing wider than the window: the page itself doesn't scroll sideways, no visible element reaches past the
window's right edge, and no scroll container on the page scrolls sideways either (the S1 table shows every column
at 1366 px without one, and becomes cards on a phone)."""

import os

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.browser.portal_pages import SCREENSHOTS_DIR, SIDE_PANELS, make_portal_data, open_side_panel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"1366": (1366, 768), "1920": (1920, 1080), "390": (390, 844)}

# What sticks out past the window's right edge: the page's own scroll width, every visible element whose box ends
# beyond it, and every element that scrolls sideways within the page (a table in an overflow-x wrapper).
OVERFLOWS = """() => {
  const width = window.innerWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (el.classList.length ? "." + [...el.classList].join(".") : "");
  const found = [];
  const pageWidth = document.scrollingElement.scrollWidth;
  if (pageWidth > width) found.push(`the page scrolls sideways: ${pageWidth} px in a ${width} px window`);
  for (const el of document.body.querySelectorAll("*")) {
    const style = getComputedStyle(el);
    if (style.display === "none" || style.visibility === "hidden") continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    if (el.closest(".sr-only")) continue;  // 1 px, clipped: read by screen readers, never seen
    if (box.right > width + 0.5) found.push(`${name(el)} ends at ${Math.round(box.right)} px`);
    if (["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1) {
      found.push(`${name(el)} scrolls sideways: ${el.scrollWidth} px in ${el.clientWidth} px`);
    }
  }
  return found;
}"""


def check(page: Page, shot: str, problems: dict[str, list[str]]) -> None:
    page.screenshot(path=os.path.join(SCREENSHOTS_DIR, f"{shot}.png"), full_page=True)
    found = page.evaluate(OVERFLOWS)
    # and no template syntax drawn as text (a {# comment #} over several lines is, in Django)
    text = page.locator("body").inner_text()
    found += [f"template syntax shown: {mark}" for mark in ("{#", "#}", "{%", "%}", "{{") if mark in text]
    if found:
        problems[shot] = found[:8]


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v}px")
def test_main_pages_fit_the_window(page: Page, live_server, clock, viewport):
    data = make_portal_data()
    width, height = VIEWPORTS[viewport]
    os.makedirs(SCREENSHOTS_DIR, exist_ok=True)
    page.set_viewport_size({"width": width, "height": height})
    page.emulate_media(reduced_motion="reduce")  # drawers without their slide: screenshots show them in place
    sign_in(page, live_server.url, data.agent)
    problems: dict[str, list[str]] = {}

    for name, path in data.pages():
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, f"{path} answered {response.status}"
        check(page, f"{viewport}-{name}", problems)

    # the subscription page's side panels, opened from the command bar
    for panel_name in SIDE_PANELS:
        page.goto(f"{live_server.url}{data.subscription_path()}")
        panel = open_side_panel(page, panel_name)
        box = panel.bounding_box()
        if viewport == "390":  # a drawer takes the whole width of a phone
            assert abs(box["x"]) < 1 and abs(box["width"] - width) < 1, f"{panel_name}: {box}"
        check(page, f"{viewport}-panel-{panel_name.lower().replace(' ', '-')}", problems)

    # and its confirmation dialogs
    page.goto(f"{live_server.url}{data.subscription_path()}")
    openers = page.locator(".commandbar [data-dialog-open]")
    labels = openers.all_inner_texts()
    assert labels, "the subscription page offers no dialog to check"
    for label in labels:
        page.locator(".commandbar [data-dialog-open]", has_text=label).click()
        dialog = page.locator("dialog[open]")
        expect(dialog).to_be_visible()
        check(page, f"{viewport}-dialog-{label.lower().replace(' ', '-')}", problems)
        page.keyboard.press("Escape")
        expect(dialog).to_have_count(0)

    assert not problems, "\n".join(f"{shot}: {'; '.join(found)}" for shot, found in problems.items())


def test_a_phones_navigation_is_behind_a_button_and_shown_without_javascript(page: Page, browser, live_server, clock):
    data = make_portal_data()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server.url, data.agent)
    page.wait_for_load_state()  # portal.js (deferred) listens
    nav, toggle = page.locator("nav#main-nav"), page.locator("button.nav-toggle")

    # the main navigation and the user menu wait behind the Menu button, which says so
    expect(nav).to_be_hidden()
    expect(page.locator("#user-menu")).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_have_attribute("aria-controls", "main-nav user-menu")
    # the search box keeps the whole width of the window, less its margins
    assert page.locator(".global-search input").bounding_box()["width"] >= 390 - 2 * 16

    # the button shows them, and hides them again
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(nav).to_be_visible()
    expect(page.locator("#user-menu")).to_be_visible()
    nav.get_by_role("link", name="Customers").click()
    expect(page).to_have_url(f"{live_server.url}/customers/")
    page.wait_for_load_state()
    toggle.click()
    expect(nav).to_be_visible()
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(nav).to_be_hidden()
    # and Esc closes it too, the focus back on the button
    toggle.click()
    expect(nav).to_be_visible()
    page.keyboard.press("Escape")
    expect(nav).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_be_focused()

    # without JavaScript there is no button: the navigation is shown, stacked above the content
    plain = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    try:
        without = plain.new_page()
        sign_in(without, live_server.url, data.agent)
        expect(without.locator("button.nav-toggle")).to_be_hidden()
        expect(without.locator("nav#main-nav")).to_be_visible()
        nav_box = without.locator("nav#main-nav").bounding_box()
        assert nav_box["y"] + nav_box["height"] <= without.locator("main").bounding_box()["y"] + 1
        assert without.evaluate("document.scrollingElement.scrollWidth") <= 390
    finally:
        plain.close()
