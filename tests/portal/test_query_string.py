"""The links of filter chips, sort headers and pagination: the query string with some keys replaced."""

import pytest
from django.http import QueryDict

from portal.templatetags.portal_tags import query_string


def by_copying(params: QueryDict, **kwargs) -> str:
    """What QueryDict itself gives: copy, set or pop, encode."""
    query = params.copy()
    for key, value in kwargs.items():
        if value in (None, ""):
            query.pop(key, None)
        else:
            query[key] = value
    return "?" + query.urlencode() if query else "?"


@pytest.mark.parametrize(
    ("query", "changes"),
    [
        ("", {"page": 2}),
        ("", {"page": ""}),
        ("status=active&page=3", {"page": ""}),
        ("status=active&page=3&sort=-name", {"status": "suspended"}),
        ("sort=name&status=active", {"page": 4, "offer": 17, "offer_name": ""}),
        ("publisher=microsoft&publisher=partner&q=E3", {"q": "E5 & Audio", "page": ""}),
        ("q=Caf%C3%A9+%2B+co&page=2", {"sort": "-quantity"}),
        ("window=48h&renews=30d", {"window": None, "renews": "30d", "status": "active"}),
    ],
)
def test_query_string_keeps_the_order_and_encoding_of_a_querydict_copy(query, changes):
    params = QueryDict(query)
    assert query_string(params, **changes) == by_copying(params, **changes)
    # and the parameters themselves are left as they were
    assert params.urlencode() == QueryDict(query).urlencode()
