"""The language a page speaks: the signed-in member's preference, else the language cookie, else the browser's
Accept-Language (zh-TW and zh-HK as zh-hant), else English; chosen through portal:language-set."""

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from portal.models import Membership
from tests import factories

pytestmark = pytest.mark.django_db

ZH_ROLE = "銷售代理"  # the sales agent's role in the user menu, from portal's catalog (Role's label)


def language_of(response) -> str:
    return response.headers["Content-Language"]


def test_the_preference_beats_the_browsers_header(signed_in, sales):
    # given a member who chose Traditional Chinese, in an English browser
    Membership.objects.filter(user=sales).update(language="zh-hant")
    # when they open Home
    response = signed_in.get(reverse("portal:home"), headers={"accept-language": "en-US,en;q=0.9"})
    # then the page speaks Chinese, and says it varies on the header
    assert response.status_code == 200
    assert language_of(response) == "zh-hant"
    assert ZH_ROLE in response.text and "Sales agent" not in response.text
    assert "Accept-Language" in response.headers["Vary"]


def test_an_english_preference_beats_a_chinese_browser(signed_in, sales):
    Membership.objects.filter(user=sales).update(language="en")
    response = signed_in.get(reverse("portal:home"), headers={"accept-language": "zh-TW"})
    assert language_of(response) == "en"
    assert "Sales agent" in response.text and ZH_ROLE not in response.text


def test_without_a_preference_the_header_decides(signed_in):
    response = signed_in.get(reverse("portal:home"), headers={"accept-language": "zh-Hant"})
    assert language_of(response) == "zh-hant"
    assert ZH_ROLE in response.text
    assert "Accept-Language" in response.headers["Vary"]


@pytest.mark.parametrize("header", ["zh-TW", "zh-HK", "zh-tw,zh;q=0.8,en;q=0.5"])
def test_a_taiwan_or_hong_kong_browser_gets_traditional_chinese(client, header):
    response = client.get(reverse("portal:login"), headers={"accept-language": header})
    assert response.status_code == 200
    assert language_of(response) == "zh-hant"


@pytest.mark.parametrize("header", ["fr-FR", "de,ja;q=0.5", "", "x-klingon;q=1", "*"])
def test_an_unknown_language_falls_back_to_english(client, header):
    response = client.get(reverse("portal:login"), headers={"accept-language": header})
    assert language_of(response) == "en"


def test_without_anything_the_portal_speaks_english(signed_in):
    response = signed_in.get(reverse("portal:home"))
    assert language_of(response) == "en"
    assert "Sales agent" in response.text


def test_a_member_saves_a_preference_that_follows_them(signed_in, sales, customer):
    # given a member in an English browser, on a customer's page
    page = reverse("portal:customer-detail", args=[customer.pk])
    # when they choose Traditional Chinese in the user menu
    response = signed_in.post(reverse("portal:language-set"), {"language": "zh-hant", "next": page})
    # then they are back on that page, the choice saved on their membership and in the cookie
    assert response.status_code == 302 and response.url == page
    assert Membership.objects.get(user=sales).language == "zh-hant"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hant"
    # and another browser of theirs, with no cookie and an English header, speaks Chinese too
    other = Client()
    other.force_login(sales)
    assert language_of(other.get(reverse("portal:home"), headers={"accept-language": "en"})) == "zh-hant"


def test_following_the_browser_again_clears_the_preference(signed_in, sales):
    Membership.objects.filter(user=sales).update(language="zh-hant")
    response = signed_in.post(reverse("portal:language-set"), {"language": "", "next": "/"})
    assert response.status_code == 302
    assert Membership.objects.get(user=sales).language == ""
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == ""  # deleted (expired)
    assert language_of(signed_in.get(reverse("portal:home"), headers={"accept-language": "en"})) == "en"


def test_an_anonymous_visitor_keeps_the_choice_in_the_cookie(client):
    # given a visitor on the sign-in page of an English browser
    login = reverse("portal:login")
    # when they choose Chinese
    response = client.post(reverse("portal:language-set"), {"language": "zh-hant", "next": login})
    # then the sign-in page speaks Chinese from then on, nothing saved on any membership
    assert response.status_code == 302 and response.url == login
    assert language_of(client.get(login, headers={"accept-language": "en"})) == "zh-hant"
    assert not Membership.objects.exclude(language="").exists()


def test_the_cookie_yields_to_a_members_preference(client, sales):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hant"
    Membership.objects.filter(user=sales).update(language="en")
    client.force_login(sales)
    assert language_of(client.get(reverse("portal:home"))) == "en"


@pytest.mark.parametrize("tampered", ["fr", "zh-TW", "zh_Hant", "en' OR 1=1", "x" * 500, "zh-hant\x00"])
def test_a_tampered_language_is_refused_and_nothing_saved(signed_in, sales, tampered):
    # given a member with a saved preference
    Membership.objects.filter(user=sales).update(language="en")
    # when a language the portal does not speak is posted
    response = signed_in.post(reverse("portal:language-set"), {"language": tampered, "next": "/"})
    # then it is refused, the preference and the cookie unchanged
    assert response.status_code == 400
    assert Membership.objects.get(user=sales).language == "en"
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_a_foreign_next_goes_home_instead(signed_in):
    for target in ["https://evil.example/", "//evil.example/", "/\\evil.example", "null"]:
        response = signed_in.post(reverse("portal:language-set"), {"language": "en", "next": target})
        assert response.status_code == 302 and response.url == reverse("portal:home")


def test_another_members_preference_is_untouched(signed_in, sales, direct_partner):
    # given a colleague of the same partner with their own preference
    colleague = factories.staff(direct_partner)
    Membership.objects.filter(user=colleague).update(language="en")
    # when the signed-in member changes theirs
    signed_in.post(reverse("portal:language-set"), {"language": "zh-hant", "next": "/"})
    # then only theirs changed
    assert Membership.objects.get(user=colleague).language == "en"
    assert Membership.objects.get(user=sales).language == "zh-hant"


def test_the_choice_needs_the_csrf_token(sales):
    # given a member's browser that checks CSRF, as a real one does
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(sales)
    # when a page elsewhere posts a language without the token
    response = browser.post(reverse("portal:language-set"), {"language": "zh-hant", "next": "/"})
    # then it is refused, nothing saved
    assert response.status_code == 403
    assert Membership.objects.get(user=sales).language == ""
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_the_choice_is_a_post(signed_in, sales):
    response = signed_in.get(reverse("portal:language-set"), {"language": "zh-hant"})
    assert response.status_code == 405
    assert Membership.objects.get(user=sales).language == ""


def test_the_user_menu_and_the_sign_in_page_offer_the_choice(client, signed_in):
    # the sign-in page (anonymous) and Home (signed in) both draw the form, with the current language pressed
    anonymous = Client()
    login = anonymous.get(reverse("portal:login"), headers={"accept-language": "zh-TW"}).text
    home = signed_in.get(reverse("portal:home")).text
    action = f'action="{reverse("portal:language-set")}"'
    for text in (login, home):
        assert action in text and 'name="csrfmiddlewaretoken"' in text
    assert 'value="zh-hant" lang="zh-hant" aria-pressed="true"' in login
    assert 'value="en" lang="en" aria-pressed="true"' in home
