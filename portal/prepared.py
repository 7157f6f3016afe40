"""Queries built and compiled once per process, then run again with other values.

Django builds a queryset and compiles its SQL at every evaluation. On the busiest pages that costs more than
running the SQL: a subscription list's page query takes about 0.1 ms on SQLite and about 1 ms to build and
compile. A prepared query is built once per *shape* by a function of stand-in values (markers), compiled by
Django, and remembered with the place of each marker among the SQL's parameters; each run puts the real values
there, runs the SQL through Django's cursor (so it is logged and counted like any query) and converts the
rows with the compiler's own converters. The SQL and the rows are exactly Django's.

The rule that keeps this safe: the build function receives every value that varies between runs as a marker
argument and closes over nothing else; everything else it reads (a filter being on, a sort, a page's bounds)
is part of the key. Each value must reach the SQL as a parameter (a marker that does not is an error), and
the markers are values no data has, so a value the build function took from elsewhere cannot be mistaken for
one. The cache lives on the database connection (one per thread), bounded in size.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime
from uuid import UUID

from django.db import connections, models
from django.db.models import QuerySet

_MAX_SHAPES = 256  # per connection; cleared when full

# The Django field that turns each kind of value into a query parameter, as the ORM does for a lookup on it.
_FIELDS = {
    UUID: models.UUIDField(),
    int: models.BigIntegerField(),
    str: models.TextField(),
    datetime: models.DateTimeField(),
    date: models.DateField(),
}


def _kind(value) -> type:
    if isinstance(value, bool):
        raise TypeError("A flag changes the query's shape: put it in the key, not among the values.")
    for kind in (UUID, int, str, datetime, date):  # datetime before date: a datetime is a date
        if isinstance(value, kind):
            return kind
    raise TypeError(f"No marker for a {type(value).__name__}.")


def _marker(kind: type, n: int):
    """The n-th stand-in value of a kind: values no row and no constant of the portal has."""
    if kind is UUID:
        return UUID(int=0x5EED_0000_0000_0000_0000_0000_0000_0000 + n)
    if kind is int:
        return -7_340_000_000_000 - n
    if kind is str:
        return f"\x1fmarker {n}\x1f"
    if kind is datetime:
        return datetime(1901, 2, 3, 4, 5, n, tzinfo=UTC)
    return date(1901, 2, 3 + n)


class _Shape:
    __slots__ = ("sql", "params", "slots", "kinds", "compiler", "converters", "col_count", "build", "model",
                 "attnames")

    def __init__(self, build: Callable[..., QuerySet], values: tuple, connection, *, count: bool, instances: bool):
        self.build = build
        self.kinds = tuple(_kind(v) for v in values)
        markers = tuple(_marker(kind, n) for n, kind in enumerate(self.kinds))
        queryset = build(*markers)
        self.model, self.attnames = queryset.model, ()
        if instances:
            if queryset.query.select_related or queryset.query.deferred_loading != (frozenset(), True):
                raise ValueError(f"{_name(build)}: instances are loaded without select_related or deferred fields.")
            self.attnames = tuple(f.attname for f in self.model._meta.concrete_fields)
            queryset = queryset.values_list(*self.attnames)
        if count:
            queryset = queryset.order_by().values("pk")
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        if count:
            sql, self.col_count, self.converters = f"SELECT COUNT(*) FROM ({sql}) counted", 1, {}
        else:
            self.col_count = compiler.col_count
            self.converters = compiler.get_converters([s[0] for s in compiler.select[: compiler.col_count]])
        adapted = {self._adapt(kind, m, connection): n for n, (kind, m) in enumerate(zip(self.kinds, markers))}
        self.slots = tuple(adapted.get(p) if _hashable(p) else None for p in params)
        missing = set(range(len(markers))) - set(self.slots)
        if missing:
            raise ValueError(f"{_name(build)}: values {sorted(missing)} are not parameters of its SQL.")
        self.sql, self.params, self.compiler = sql, list(params), compiler

    @staticmethod
    def _adapt(kind: type, value, connection):
        return _FIELDS[kind].get_db_prep_value(value, connection, prepared=False)

    def run(self, values: tuple, connection) -> list:
        if tuple(_kind(v) for v in values) != self.kinds:
            raise TypeError(f"{_name(self.build)}: values of other kinds than its first run's.")
        adapted = [self._adapt(kind, v, connection) for kind, v in zip(self.kinds, values)]
        params = [p if slot is None else adapted[slot] for p, slot in zip(self.params, self.slots)]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if len(rows) and len(rows[0]) != self.col_count:
            rows = [row[: self.col_count] for row in rows]
        if self.converters:
            return [tuple(row) for row in self.compiler.apply_converters(rows, self.converters)]
        return rows


def _name(build) -> str:
    return getattr(getattr(build, "func", build), "__qualname__", repr(build))


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _shape(key: tuple, build: Callable[..., QuerySet], values: tuple, using: str, count: bool,
           instances: bool = False) -> tuple[_Shape, object]:
    connection = connections[using]
    cache = connection.__dict__.setdefault("_prepared_shapes", {})
    full_key = (key, count, instances)
    shape = cache.get(full_key)
    if shape is None:
        if len(cache) >= _MAX_SHAPES:
            cache.clear()
        shape = cache[full_key] = _Shape(build, values, connection, count=count, instances=instances)
    elif _name(shape.build) != _name(build):
        raise ValueError(f"Prepared query {key!r} is built by {_name(shape.build)}, not {_name(build)}.")
    return shape, connection


def rows(key: tuple, build: Callable[..., QuerySet], *values, using: str = "default") -> list[tuple]:
    """The rows of `build(*markers)` (a `values_list()` queryset) with `values` in the markers' places, as
    `list(build(*values))` would return them. `key` names the shape: the same key, the same SQL."""
    shape, connection = _shape(key, build, values, using, count=False)
    return shape.run(values, connection)


def count(key: tuple, build: Callable[..., QuerySet], *values, using: str = "default") -> int:
    """`build(*values).count()`, prepared like `rows` (its own shape under the same key)."""
    shape, connection = _shape(key, build, values, using, count=True)
    return shape.run(values, connection)[0][0]



def instances(key: tuple, build: Callable[..., QuerySet], *values, using: str = "default") -> list:
    """The model instances of `build(*markers)` (a queryset of one model, without select_related or deferred
    fields) with `values` in the markers' places, loaded as the ORM loads them (`Model.from_db`)."""
    shape, connection = _shape(key, build, values, using, count=False, instances=True)
    from_db, attnames = shape.model.from_db, shape.attnames
    return [from_db(using, attnames, row) for row in shape.run(values, connection)]
