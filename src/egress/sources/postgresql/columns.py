"""PostgreSQL types as logical types, and the SQL that reads each column on the Arrow
path and on the COPY fast path."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from egress.domain.catalog import ColumnInfo
from egress.domain.plan import ReadPlan
from egress.domain.types import decimal_type, list_type, parse_decimal, parse_list
from egress.query.select import column
from egress.sources.postgresql.settings import SQL_ASCII

_NATIVE: dict[str, str] = {
    "bool": "boolean",
    "int2": "int16",
    "int4": "int32",
    "int8": "int64",
    "float4": "float32",
    "float8": "float64",
    "text": "string",
    "varchar": "string",
    "bpchar": "string",
    "name": "string",
    "citext": "string",
    "date": "date",
    "time": "time",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "bytea": "binary",
    "json": "json",
    "jsonb": "json",
    "uuid": "uuid",
    "money": "decimal",  # read as money::numeric: its scale follows lc_monetary
    # Object identifiers are unsigned 32-bit: int64 holds every one (read as ::int8).
    "oid": "int64",
    **dict.fromkeys(
        [
            "regclass",
            "regcollation",
            "regconfig",
            "regdictionary",
            "regnamespace",
            "regoper",
            "regoperator",
            "regproc",
            "regprocedure",
            "regrole",
            "regtype",
        ],
        "int64",
    ),
}
# Logical types whose values travel as text from PostgreSQL (cast in the SELECT).
AS_TEXT = {"string", "json", "uuid", "decimal"}
# Array elements: the SQL type an array is cast to, so ADBC reads a list of it.
_ELEMENT_SQL = {
    "boolean": "BOOLEAN[]",
    "int16": "SMALLINT[]",
    "int32": "INT[]",
    "int64": "BIGINT[]",
    "float32": "REAL[]",
    "float64": "DOUBLE PRECISION[]",
    "date": "DATE[]",
    "time": "TIME[]",
    "timestamp": "TIMESTAMP[]",
    "timestamptz": "TIMESTAMPTZ[]",
    "binary": "BYTEA[]",
}
# ADBC reads 'infinity'/'-infinity' as the int64 (or int32 days) sentinels shifted from
# A marker a multi-dimensional array makes PostgreSQL quote back in its error message.
MULTIDIM = "egress-multidimensional-array"

# Logical types whose text comes from the database's bytes as they are (the rest is ASCII).
RAW_TEXT = frozenset({"string", "json"})


def logical_type(typname: str, typmod: int) -> str:
    """The logical type of a column's declared type (``int4[]`` for an array of int4)."""
    if typname.endswith("[]"):
        element = logical_type(typname[:-2], -1)
        return list_type(element if element in _ELEMENT_SQL else _text_element(element))
    if typname == "numeric":
        if typmod < 0:
            return "decimal"
        return decimal_type(((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF)
    return _NATIVE.get(typname, "string")


# Types whose cast to text is not their own text: char(n)'s strips its padding, inet's adds
# the netmask of a single host ('192.168.1.5/32'; psql shows '192.168.1.5').
OWN_TEXT = frozenset({"bpchar", "inet"})


def native_type(typname: str) -> str | None:
    """What a column of ``typname`` (or an array of it, or a domain over either: the catalog
    and a query's probe report the base type) keeps of its type: the types of OWN_TEXT, and
    money (read as its digits like any decimal, but no key after a decimal cursor: it has no
    comparison with numeric; domain.export)."""
    if typname == "money":
        return typname
    return typname if typname.removesuffix("[]") in OWN_TEXT else None


def _text_element(logical: str) -> str:
    """Array elements read as text: decimals stay decimals, anything else is a string."""
    return "decimal" if logical == "decimal" or parse_decimal(logical) else "string"


def is_text(logical: str) -> bool:
    return logical in AS_TEXT or parse_decimal(logical) is not None


def arrow_path_sql(field: ColumnInfo) -> exp.Expression:
    """What the Arrow path selects for a column: every rule keys on the logical type only."""
    col = column(field.name)
    element = parse_list(field.type)
    if element is not None:
        return _array_sql(field.name, element, field.native)
    if field.type == "decimal" or parse_decimal(field.type):  # also money, as digits
        return exp.cast(exp.cast(col, "NUMERIC"), "TEXT")
    if field.type == "int64":  # also oid and reg* (unsigned 32-bit)
        return exp.cast(col, "BIGINT")
    if field.native == "bpchar":  # as itself: its text keeps the padding
        return exp.cast(col, exp.DataType.build("BPCHAR", udt=True))
    if field.native == "inet":  # inet's own text (PostgreSQL's documentation says so)
        return exp.Anonymous(this="abbrev", expressions=[col])
    return exp.cast(col, "TEXT") if is_text(field.type) else col


def _array_sql(name: str, element: str, native: str | None = None) -> exp.Expression:
    """A one-dimensional array as its element's array type; a multi-dimensional value fails
    (ADBC would flatten it silently) with an error naming the column."""
    col = column(name)
    value: exp.Expression = col
    if element in _ELEMENT_SQL:
        target = exp.DataType.build(_ELEMENT_SQL[element], dialect="postgres")
    else:
        if element == "decimal":  # money[] too: digits, not '$12.34'
            value = exp.cast(col, exp.DataType.build("NUMERIC[]", dialect="postgres"))
        target = exp.DataType.build("TEXT[]", dialect="postgres")
        if native is not None:  # each element by its own text: the array's text, read back
            value = exp.cast(col, "TEXT")
    ndims = exp.Anonymous(this="array_ndims", expressions=[col.copy()])
    # Not a constant (PostgreSQL would fold it when planning): cast only where it is reached.
    marker = exp.DPipe(
        this=exp.DPipe(this=exp.Literal.string(f"{MULTIDIM}:"), expression=exp.cast(ndims, "TEXT")),
        expression=exp.Literal.string(f":{name}"),
    )
    too_deep = exp.GT(this=ndims.copy(), expression=exp.Literal.number(1))
    return exp.Case(
        ifs=[exp.If(this=too_deep, true=exp.cast(marker, target.copy()))],
        default=exp.Cast(this=value, to=target),
    )


def raw_text_sql(field: ColumnInfo) -> exp.Expression:
    """The Arrow path's column, but text from a SQL_ASCII database as its bytes (decoded
    here): the server sends SQL_ASCII text unconverted, whatever it holds."""
    if field.type not in RAW_TEXT:
        return arrow_path_sql(field)
    return exp.Anonymous(
        this="convert_to", expressions=[_text_sql(field), exp.Literal.string(SQL_ASCII)]
    )


def _text_sql(field: ColumnInfo) -> exp.Expression:
    """A column as text; one of OWN_TEXT by its type's own text (``format``'s ``%s``), NULL
    kept."""
    col = column(field.name)
    if field.native is None:
        return exp.cast(col, "TEXT")
    formatted = exp.Anonymous(this="format", expressions=[exp.Literal.string("%s"), col.copy()])
    return exp.Case(
        ifs=[exp.If(this=exp.Is(this=col, expression=exp.Null()), true=exp.Null())],
        default=formatted,
    )


# Types the COPY fast path renders exactly as Egress's Arrow CSV writer does.
COPY_SAFE = {
    "boolean",
    "int16",
    "int32",
    "int64",
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "binary",
}


# Arrays whose elements PostgreSQL's ``array_to_json`` writes as Egress's JSON does: integers
# and booleans bare, text escaped as Python's encoder escapes it (``"``, ``\``, the C0 controls,
# ``\n`` style where it has one, else ``\u00XX``), ``null``; decimals are read as text (the
# Arrow path's ``TEXT[]``: strings of their digits).
JSON_ARRAYS = {"boolean", "int16", "int32", "int64", "string", "decimal"}
# Arrays whose elements ``array_to_json`` writes its own way (``100`` for ``100.0``, trimmed
# fractions, BC years): each element is rendered in SQL (``_elements_json``). Floats only on a
# server whose float text is the shortest (``FLOAT_ELEMENTS``: the source knows).
RENDERED_ARRAYS = {"date", "time", "timestamp", "timestamptz", "binary"}
FLOAT_ELEMENTS = {"float32", "float64"}


def can_render_csv(logical: str, shortest_floats: bool = False) -> bool:
    """Types the COPY fast path renders exactly as the CSV writer (text types as text); arrays
    of floats where the server writes a float's shortest text."""
    element = parse_list(logical)
    return (
        logical in COPY_SAFE
        or is_text(logical)
        or element in JSON_ARRAYS
        or element in RENDERED_ARRAYS
        or (shortest_floats and element in FLOAT_ELEMENTS)
    )


# Quoted by Arrow's CSV writer (it writes them as text: an infinite one is a word; a list is
# its JSON text).
COPY_QUOTED = AS_TEXT | {"date", "time", "timestamp", "timestamptz", "binary"}


def _quoted(logical: str) -> bool:
    return logical in COPY_QUOTED or parse_list(logical) is not None


# The years whose ISO text (DateStyle ISO) is ``YYYY-MM-DD HH:MI:SS[.f…]``: other timestamps
# (BC, five-digit years) are rendered by ``to_char`` after their ISO year, which is exact but
# costs the server about as much as the rest of the COPY; infinities are words.
_PLAIN_YEARS = ("0001-01-01 00:00:00", "10000-01-01 00:00:00")
# PostgreSQL's text of a time of day drops trailing zeros of the fraction: what each length
# lacks of Egress's six digits (8: whole seconds, ``HH:MI:SS``; 9 never occurs). A
# timestamp's text is its date's 11 characters longer.
_FRACTION_PADDING = {8: ".000000", 10: "00000", 11: "0000", 12: "000", 13: "00", 14: "0"}
_DATE_AND_SPACE = 11


def _iso_year(value: exp.Expression) -> exp.Expression:
    """The year as Arrow writes it (ISO 8601's astronomical years): 1 BC is ``0000``, 44 BC
    ``-0043``, later years their digits (``10000``). PostgreSQL's text says ``0044 … BC``."""
    year = exp.cast(exp.Extract(this=exp.var("YEAR"), expression=value), "INT")
    before_christ = exp.DPipe(  # year is -44 for 44 BC (there is no year 0)
        this=exp.Literal.string("-"),
        expression=exp.Anonymous(
            this="lpad",
            expressions=[
                exp.cast(exp.Sub(this=exp.Literal.number(-1), expression=year.copy()), "TEXT"),
                exp.Literal.number(4),
                exp.Literal.string("0"),
            ],
        ),
    )
    return exp.Case(
        ifs=[
            exp.If(
                this=exp.GT(this=year.copy(), expression=exp.Literal.number(0)),
                true=exp.cast(year.copy(), "TEXT"),
            ),
            exp.If(
                this=exp.EQ(this=year.copy(), expression=exp.Literal.number(-1)),
                true=exp.Literal.string("0000"),
            ),
        ],
        default=before_christ,
    )


def _odd_year(value: exp.Expression, rest: str) -> exp.Expression:
    """A value outside years 1 to 9999: its ISO year, then ``to_char``'s ``rest``."""
    return exp.DPipe(
        this=_iso_year(value.copy()),
        expression=exp.Anonymous(this="to_char", expressions=[value, exp.Literal.string(rest)]),
    )


def _six_digits(text: exp.Expression, before_time: int, suffix: str = "") -> exp.Expression:
    """``text`` (a time of day ``before_time`` characters in) padded to six fraction digits
    by its byte length, then ``suffix``: a simple CASE, cheap for the server."""
    return exp.Case(
        this=exp.Anonymous(this="octet_length", expressions=[text.copy()]),
        ifs=[
            exp.If(
                this=exp.Literal.number(before_time + length),
                true=exp.DPipe(this=text.copy(), expression=exp.Literal.string(pad + suffix)),
            )
            for length, pad in _FRACTION_PADDING.items()
        ],
        default=exp.DPipe(this=text.copy(), expression=exp.Literal.string(suffix))
        if suffix
        else text,
    )


def time_sql(col: exp.Expression) -> exp.Expression:
    """``HH:MI:SS.ffffff``, ``24:00:00.000000`` for the end of a day (as ``sinks.render``)."""
    return _six_digits(exp.cast(col, "TEXT"), 0)


def base64_sql(col: exp.Expression) -> exp.Expression:
    """Base64 on one line: PostgreSQL's ``encode`` breaks it every 76 characters."""
    encoded = exp.Anonymous(this="encode", expressions=[col, exp.Literal.string("base64")])
    newline = exp.Anonymous(this="chr", expressions=[exp.Literal.number(10)])
    return exp.Anonymous(this="translate", expressions=[encoded, newline, exp.Literal.string("")])


def timestamp_sql(col: exp.Expression, utc: bool) -> exp.Expression:
    """``YYYY-MM-DD HH:MI:SS.ffffff`` (``Z`` when time-zoned, in UTC): the value's own text
    padded to six fraction digits by its byte length (a simple CASE, cheap for the server),
    ``to_char`` with an ISO year outside years 1 to 9999, the word for an infinity."""
    wall = exp.AtTimeZone(this=col.copy(), zone=exp.Literal.string("UTC")) if utc else col.copy()
    zone = "Z" if utc else ""
    padded = _six_digits(exp.cast(wall.copy(), "TEXT"), _DATE_AND_SPACE, zone)
    low, high = (
        exp.cast(exp.Literal.string(f"{t}+00" if utc else t), "TIMESTAMPTZ" if utc else "TIMESTAMP")
        for t in _PLAIN_YEARS
    )
    plain_year = exp.and_(
        exp.GTE(this=col.copy(), expression=low), exp.LT(this=col.copy(), expression=high)
    )
    rest = '-MM-DD HH24:MI:SS.US"Z"' if utc else "-MM-DD HH24:MI:SS.US"
    # to_char gives NULL for 'infinity'; its text form is the word itself.
    finite = exp.Anonymous(this="isfinite", expressions=[col.copy()])
    return exp.Case(
        ifs=[
            exp.If(this=plain_year, true=padded),
            exp.If(this=finite, true=_odd_year(wall, rest)),
        ],
        default=exp.cast(col, "TEXT"),
    )


def date_sql(col: exp.Expression) -> exp.Expression:
    """PostgreSQL's text of a date (``YYYY-MM-DD``, five-digit years too, infinities as
    words) except BC, which gets its ISO year: one comparison per row."""
    first = exp.cast(exp.Literal.string("0001-01-01"), "DATE")
    finite = exp.Anonymous(this="isfinite", expressions=[col.copy()])
    return exp.Case(
        ifs=[
            exp.If(this=exp.GTE(this=col.copy(), expression=first), true=exp.cast(col, "TEXT")),
            exp.If(this=finite, true=_odd_year(col.copy(), "-MM-DD")),
        ],
        default=exp.cast(col.copy(), "TEXT"),
    )


def _quoted_text(text: exp.Expression) -> exp.Expression:
    """A JSON string of text that needs no escapes (digits, letters, ``-:.+/=``)."""
    quote = exp.Literal.string('"')
    return exp.DPipe(this=exp.DPipe(this=quote, expression=text), expression=quote.copy())


def _parsed(sql: str) -> exp.Expression:
    parsed = sqlglot.parse_one(sql, dialect="postgres")
    assert isinstance(parsed, exp.Expression)
    return parsed


def _filled(template: exp.Expression, **values: exp.Expression) -> exp.Expression:
    """``template`` with each unquoted column ``egress_<key>`` replaced by ``values[key]`` (a
    table's columns are quoted: one named ``egress_text`` is left alone)."""

    def fill(node: exp.Expression) -> exp.Expression:
        if (
            isinstance(node, exp.Column)
            and not node.table
            and not node.this.quoted
            and node.name.startswith("egress_")
        ):
            return values[node.name.removeprefix("egress_")].copy()
        return node

    return template.copy().transform(fill)


# Python's repr of a double, from PostgreSQL's shortest text of it (extra_float_digits = 1):
# the same digits, but PostgreSQL writes an exponent from 15 on where Python does from 16
# (``1e+15``: ``1000000000000000.0``) and whole numbers without ``.0``; NaN and the
# infinities are JSON strings, as Egress's JSON writes them (``sinks.render``).
# (The most common case second: ~8 % less server time than the words first.)
_FLOAT_JSON = _parsed(
    """CASE
    WHEN right(egress_text, 4) = 'e+15' THEN
        CASE WHEN egress_text LIKE '-%' THEN '-' ELSE '' END
        || CASE WHEN length(egress_digits) > 16
                THEN left(egress_digits, 16) || '.' || substr(egress_digits, 17)
                ELSE rpad(egress_digits, 16, '0') || '.0' END
    WHEN strpos(egress_text, '.') > 0 OR strpos(egress_text, 'e') > 0 THEN egress_text
    WHEN egress_text IN ('NaN', 'Infinity', '-Infinity') THEN '"' || egress_text || '"'
    ELSE egress_text || '.0' END"""
)
_FLOAT_DIGITS = _parsed("replace(split_part(ltrim(egress_text, '-'), 'e', 1), '.', '')")
# An array as JSON, element by element, in order; NULL elements as null.
_ELEMENTS_JSON = _parsed(
    """CASE WHEN egress_column IS NULL THEN NULL ELSE '[' || array_to_string(ARRAY(
        SELECT coalesce(egress_item_json, 'null')
        FROM unnest(egress_array) WITH ORDINALITY AS egress_items(item, ord)
        ORDER BY egress_items.ord), ',') || ']' END"""
)


def _float_json(text: exp.Expression) -> exp.Expression:
    return _filled(_FLOAT_JSON, text=text, digits=_filled(_FLOAT_DIGITS, text=text))


def _element_json(element: str, item: exp.Expression) -> exp.Expression:
    """One element's JSON text as Egress's JSON of a list writes it (``sinks.render``):
    dates, times and bytea as their CSV text, timestamps with ISO 8601's ``T``, floats (read
    as text, a single widened to a double first) as Python writes them."""
    if element == "date":
        return _quoted_text(date_sql(item))
    if element == "time":
        return _quoted_text(time_sql(item))
    if element == "binary":
        return _quoted_text(base64_sql(item))
    if element in ("timestamp", "timestamptz"):
        text = timestamp_sql(item, element == "timestamptz")
        spaced = exp.Anonymous(
            this="replace",
            expressions=[text, exp.Literal.string(" "), exp.Literal.string("T")],
        )
        return _quoted_text(spaced)
    return _float_json(item)


def _elements_json(name: str, element: str) -> exp.Expression:
    """An array of elements PostgreSQL's ``array_to_json`` writes its own way, as Egress's
    JSON: each element rendered in SQL (``_element_json``), joined in order."""
    array = _array_sql(name, element)
    if element in FLOAT_ELEMENTS:
        # exp.Cast: ``exp.cast`` drops a cast between two array types.
        wide = exp.Cast(this=array, to=exp.DataType.build("DOUBLE PRECISION[]", dialect="postgres"))
        array = exp.Cast(this=wide, to=exp.DataType.build("TEXT[]", dialect="postgres"))
    item = exp.column("item", table="egress_items")
    return _filled(
        _ELEMENTS_JSON, column=column(name), array=array, item_json=_element_json(element, item)
    )


def copy_sql(field: ColumnInfo) -> exp.Expression:
    col = column(field.name)
    if field.type == "boolean":  # 'true'/'false' (COPY itself writes t/f)
        return exp.cast(col, "TEXT")
    if field.type in ("timestamp", "timestamptz"):
        return timestamp_sql(col, field.type == "timestamptz")
    if field.type == "date":
        return date_sql(col)
    if field.type == "time":
        return time_sql(col)
    if field.type == "binary":
        return base64_sql(col)
    element = parse_list(field.type)
    if element is not None and element not in JSON_ARRAYS:
        return _elements_json(field.name, element)
    if element is not None:  # a one-dimensional array as the Arrow path reads it, as JSON
        json_array = exp.Anonymous(
            this="array_to_json", expressions=[_array_sql(field.name, element, field.native)]
        )
        return exp.cast(json_array, "TEXT")
    return arrow_path_sql(field)


def jsonl_copy_sql(field: ColumnInfo) -> exp.Expression:
    """``copy_sql`` for JSONL: a single widened to a double (exact), whose shortest text is
    what Egress's JSON writes for a single (``0.10000000149011612``, not ``0.1``)."""
    if field.type == "float32":
        return exp.cast(column(field.name), "DOUBLE PRECISION")
    return copy_sql(field)


def csv_header(names: list[str]) -> bytes:
    """The header line exactly as pyarrow's CSV writer renders it."""
    return (",".join('"' + n.replace('"', '""') + '"' for n in names) + "\n").encode()


def force_quote(plan: ReadPlan) -> str:
    """COPY's option quoting the columns Arrow's CSV writer quotes (Egress's rendering)."""
    quoted = [f.name for f in plan.fields if _quoted(f.type)]
    if not quoted:
        return ""
    names = ", ".join(exp.to_identifier(n, quoted=True).sql("postgres") for n in quoted)
    return f", FORCE_QUOTE ({names})"
