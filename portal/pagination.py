"""Pagination that skips the COUNT query when the rows already say how many there are."""

from django.core.paginator import Page, Paginator
from django.utils.functional import cached_property


class SmallListPaginator(Paginator):
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
        if self.count_field is not None and not self.orphans:
            page = self._page_with_its_count(number)
            if page is not None:
                return page
        if number in (None, "", "1", 1):
            rows = list(self.object_list[: self.per_page + 1])
            if len(rows) <= self.per_page:
                self._first_rows = rows
            return Page(rows[: self.per_page], 1, self)
        return super().get_page(number)

    def _page_with_its_count(self, number) -> Page | None:
        """The page `number` read in one query, its rows telling the count; None when that is not possible (a
        number that is not a plain positive integer, or a page past the end), for the ordinary way to decide."""
        if number in (None, ""):
            number = 1
        elif isinstance(number, str) and number.isascii() and number.isdigit():
            number = int(number)
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            return None
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom: bottom + self.per_page])
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
