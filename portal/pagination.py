"""Page numbers read from a query string, and pagination that skips the COUNT query when the rows already say how
many there are."""

from django.core.paginator import Page, Paginator
from django.utils.functional import cached_property

# No list a database holds reaches this many rows, and an OFFSET this large still fits 64 bits: a page number
# whose first row lies beyond it is simply past the end, never an OFFSET the database refuses.
MAX_OFFSET = 2**62


def requested_page(raw, per_page: int) -> int:
    """The page a query string asks for, at least 1: ASCII digits only (so "-1", "0", "1.5", "NaN", "１２" and "٣"
    are page 1, as the portal's own links never send them); a number past every list's end stays past the end,
    for the paginator to show the last page."""
    text = str(raw if raw is not None else "").strip()
    if not (text.isascii() and text.isdigit()):
        return 1
    most = MAX_OFFSET // per_page
    # Length first: int() of thousands of digits is slow, and past 4,300 it raises.
    return most if len(text) > len(str(most)) else max(1, min(int(text), most))


class ClampedPaginator(Paginator):
    """Django's paginator, whatever the page number asked for (`requested_page`): a page that exists, the last one
    for a number past the end."""

    def get_page(self, number):
        return super().get_page(requested_page(number, self.per_page))


class SmallListPaginator(ClampedPaginator):
    """Most customers have one page of orders or subscriptions: counting them is a wasted query.

    The first page is fetched with one extra row; if it comes back short, its length is the count.

    With `count_field`, the rows are dicts that carry the total themselves (or `count_field` is a function that
    tells the count that came with the rows) (the query selects the count of the
    whole filtered list as a scalar subquery in that column): a page is fetched by itself and its first row holds the
    count; an empty first page counts 0. Only a page past the end costs a COUNT query (and then the last page's).
    """

    def __init__(self, object_list, per_page, *, count_field=None, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self._first_rows = None
        self._counted = None
        self.count_field = count_field

    def get_page(self, number):
        number = requested_page(number, self.per_page)
        if self.count_field is not None and not self.orphans:
            page = self._page_with_its_count(number)
            if page is not None:
                return page
        if number == 1:
            rows = list(self.object_list[: self.per_page + 1])
            if len(rows) <= self.per_page:
                self._first_rows = rows
            return Page(rows[: self.per_page], 1, self)
        return super().get_page(number)

    def _page_with_its_count(self, number: int) -> Page | None:
        """The page `number` read in one query, its rows telling the count; None when that is not possible (a page
        past the end), for the ordinary way to decide."""
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page])
        if not rows:
            if number == 1 and self.allow_empty_first_page:
                self._counted = 0
                return Page(rows, 1, self)
            return None
        # a key of the rows (dicts), or a function of the rows that tells the count that came with them
        self._counted = self.count_field(rows) if callable(self.count_field) else rows[0][self.count_field]
        return Page(rows, number, self)

    @cached_property
    def count(self):
        if self._counted is not None:
            return self._counted
        if self._first_rows is not None:
            return len(self._first_rows)
        return super().count
