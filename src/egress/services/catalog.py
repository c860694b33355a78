"""Browsing a connection: its element tree, and the templates discovered from it."""

from __future__ import annotations

from dataclasses import dataclass, replace

from egress.crypto import SecretBox
from egress.db.connections import ConnectionRepo
from egress.db.paging import Page
from egress.db.templates import TemplateRecord as TemplateRecord
from egress.db.templates import TemplateRepo
from egress.domain.catalog import (
    ColumnInfo,
    TableInfo,
    TableRef,
    account_of,
    accounts_of,
    csv_null_values,
    with_column_types,
)
from egress.domain.errors import FieldError, Invalid, NotFound
from egress.domain.identity import require_admin
from egress.domain.incremental import cursor_problem
from egress.domain.paging import PageRequest
from egress.query.custom import LOC as QUERY_LOC
from egress.query.custom import check_query
from egress.sources import Source, SourceError, open_source
from egress.sources.base import AccessAudit, CsvNullSpellings, QueryError, QuerySource
from egress.sources.policy import SourcePolicy


@dataclass(frozen=True)
class NewTemplate:
    """What a client asks for when it makes a template: over a table (``table``, with
    ``schema`` apart or not) or, for admins, over a SQL ``query``; never both."""

    connection_id: str
    name: str
    table: str | None = None
    schema: str | None = None
    query: str | None = None
    fields: list[str] | None = None
    primary_key: list[str] | None = None
    cursor_field: str | None = None
    date_field: str | None = None
    column_types: dict[str, str] | None = None
    csv_null_values: list[str] | None = None  # a CSV table's own NULL spellings


def _one_of_table_or_query(new: NewTemplate) -> None:
    if (new.table is None) != (new.query is None):
        return
    msg = (
        "give either table or query, not both"
        if new.table is not None
        else "a template needs a table or a query"
    )
    raise Invalid(
        detail=f"table, query: {msg}",
        errors=[FieldError(("body", "table"), msg), FieldError(("body", "query"), msg)],
    )


def _check_query_shape(new: NewTemplate) -> None:
    """A SQL template's columns, types and tables are its query's: nothing else may name them."""
    if new.column_types is not None:
        raise Invalid.at(
            ("body", "column_types"),
            "a SQL template's types are its query's: cast in the SELECT instead",
        )
    if new.csv_null_values is not None:
        raise Invalid.at(("body", "csv_null_values"), "only CSV files take NULL spellings")
    if new.schema is not None:
        raise Invalid.at(("body", "schema"), "a SQL template names its tables in the query")
    if new.fields is not None:
        raise Invalid.at(
            ("body", "fields"),
            "a SQL template's fields are its query's columns: choose them in the SELECT",
        )


def _check_field(loc: str, name: str | None, fields: list[ColumnInfo]) -> None:
    if name is not None and name not in {f.name for f in fields}:
        raise Invalid.at(("body", loc), f"unknown field {name!r}")


def _check_cursor(name: str | None, fields: list[ColumnInfo]) -> None:
    _check_field("cursor_field", name, fields)
    found = next((f for f in fields if f.name == name), None)
    if found is not None and (problem := cursor_problem(found.type)) is not None:
        raise Invalid.at(("body", "cursor_field"), f"{name!r} cannot be a cursor: {problem}")


class CatalogService:
    """A connection's catalog, and the templates (discovered, custom, SQL) made over it."""

    def __init__(
        self,
        connections: ConnectionRepo,
        templates: TemplateRepo,
        secret_box: SecretBox,
        policy: SourcePolicy,
    ) -> None:
        self._connections = connections
        self._templates = templates
        self._secret_box = secret_box
        self._policy = policy

    def get_template(self, workspace_id: str, template_id: str) -> TemplateRecord:
        return self._templates.get(workspace_id, template_id)

    def list_templates(
        self, workspace_id: str, connection_id: str | None, page: PageRequest
    ) -> Page[TemplateRecord]:
        """With ``connection_id``, that connection's tables are discovered first."""
        if connection_id is not None:
            self.discover(workspace_id, connection_id)
        return self._templates.list_page(workspace_id, connection_id, page)

    def elements(self, workspace_id: str, connection_id: str) -> list[TableInfo]:
        """The connection's tables, read from the source (404 first for another's)."""
        self._connections.get(workspace_id, connection_id)
        return self.discover(workspace_id, connection_id)

    def accounts(self, workspace_id: str, connection_id: str) -> list[str]:
        """The connection's accounts (schemas, MySQL databases, folders), read from the source."""
        return accounts_of(self.elements(workspace_id, connection_id))

    def account_check(
        self, workspace_id: str, template: TemplateRecord, wanted: list[str] | None
    ) -> str | None:
        """The one account a configuration over ``template`` reads: ``wanted`` (at most one,
        of the template's connection, the one its table is in), or the table's own."""
        loc = ("body", "accounts")
        if wanted is not None and len(wanted) > 1:
            raise Invalid.at(loc, f"an extract reads one account; {len(wanted)} were given")
        tables = self.elements(workspace_id, template.connection_id)
        own = account_of(tables, template.source)
        if not wanted:
            return own
        known = accounts_of(tables)
        if wanted[0] not in known:
            raise Invalid.at(
                (*loc, 0),
                f"{wanted[0]!r} is not an account of connection {template.connection_id}; "
                f"its accounts are: {', '.join(known)}",
            )
        if wanted[0] != own:
            reads = "no single account (a SQL template)" if own is None else f"account {own!r}"
            raise Invalid.at((*loc, 0), f"template {template.id} reads {reads}, not {wanted[0]!r}")
        return own

    def source_for(self, workspace_id: str, connection_id: str) -> Source:
        """A source opened inside an API request: interactive, so every call is time-limited."""
        record = self._connections.get(workspace_id, connection_id)
        secrets = self._secret_box.open(record.sealed_secrets)
        return open_source(record.type, record.settings, secrets, self._policy.interactive())

    def test_connection(
        self, workspace_id: str, connection_id: str
    ) -> tuple[str | None, list[str]]:
        """(None, warnings) when the source answers, else (its error, []). Warnings advise a
        least-privilege read-only user where the connection's user is a superuser or can write."""
        try:
            source = self.source_for(workspace_id, connection_id)
            if isinstance(source, AccessAudit):
                return None, source.check_access()
            source.check()
        except SourceError as exc:
            return str(exc), []
        return None, []

    def discover(self, workspace_id: str, connection_id: str) -> list[TableInfo]:
        """Read the source's catalog and keep the discovered templates in step with it."""
        tables = self.source_for(workspace_id, connection_id).catalog()
        self._templates.sync_discovered(workspace_id, connection_id, tables)
        return tables

    def create_template(self, workspace_id: str, role: str, new: NewTemplate) -> TemplateRecord:
        """A template over a table or a query, whichever ``new`` names (each face's one way in);
        an unknown connection is the request's mistake (422 naming it), not a missing page."""
        _one_of_table_or_query(new)
        try:
            self._connections.get(workspace_id, new.connection_id)
        except NotFound as exc:
            raise Invalid.at(
                ("body", "connection_id"), f"unknown connection {new.connection_id!r}"
            ) from exc
        if new.query is not None:
            _check_query_shape(new)
            return self.create_query_template(
                workspace_id,
                new.connection_id,
                new.name,
                new.query,
                new.primary_key,
                new.cursor_field,
                new.date_field,
                role=role,
            )
        assert new.table is not None  # one of the two, checked above
        return self.create_custom_template(
            workspace_id,
            new.connection_id,
            new.name,
            new.table,
            new.fields,
            new.primary_key,
            new.cursor_field,
            new.date_field,
            new.column_types,
            schema=new.schema,
            null_values=new.csv_null_values,
        )

    def create_custom_template(
        self,
        workspace_id: str,
        connection_id: str,
        name: str,
        table: str,
        fields: list[str] | None,
        primary_key: list[str] | None,
        cursor_field: str | None,
        date_field: str | None,
        column_types: dict[str, str] | None = None,
        schema: str | None = None,
        null_values: list[str] | None = None,
    ) -> TemplateRecord:
        """A template over one table: ``table`` is its shown name (``public.orders``,
        ``"x.y".z``, a file's path), or its bare name when ``schema`` is given apart. A CSV
        table's template may have its own NULL spellings (``null_values``): its types are then
        inferred with them, and its reads use them instead of the connection's."""
        self._connections.get(workspace_id, connection_id)  # 404 before we touch the source
        tables = self.discover(workspace_id, connection_id)
        if schema is not None:
            base = next((t for t in tables if t.ref == TableRef(schema, table)), None)
            wanted = TableRef(schema, table).display
        else:
            base = next((t for t in tables if t.qualified_name == table), None)
            wanted = table
        if base is None:
            raise Invalid.at(("body", "table"), f"no table or view {wanted!r} on this connection")
        if null_values is not None:
            base = self._with_null_values(workspace_id, connection_id, base, null_values)
        chosen = base.columns
        if fields is not None:
            unknown = [f for f in fields if base.column(f) is None]
            if unknown:
                raise Invalid.at(
                    ("body", "fields"), f"unknown field(s) {', '.join(map(repr, unknown))}"
                )
            chosen = [col for name_ in fields if (col := base.column(name_)) is not None]
        chosen = with_column_types(chosen, column_types or {}, base)
        for key in primary_key or []:
            _check_field("primary_key", key, chosen)
        _check_cursor(cursor_field, chosen)
        _check_field("date_field", date_field, chosen)
        names = {col.name for col in chosen}
        if primary_key is None:  # inherit the table's key only if every key column is kept
            primary_key = base.primary_key if set(base.primary_key) <= names else []
        return self._templates.create_custom(
            workspace_id,
            connection_id,
            name,
            base.ref,
            chosen,
            primary_key,
            cursor_field,
            date_field,
            csv_null_values=null_values,
        )

    def _with_null_values(
        self, workspace_id: str, connection_id: str, base: TableInfo, values: list[str]
    ) -> TableInfo:
        """``base`` with its columns as its CSV text reads with ``values`` meaning NULL."""
        spellings = csv_null_values(values, base)
        source = self.source_for(workspace_id, connection_id)
        assert isinstance(source, CsvNullSpellings) and base.path is not None  # CSV: files
        try:
            columns = source.infer_columns(base.path, spellings)
        except SourceError as exc:
            raise Invalid.at(("body", "table"), str(exc)) from exc
        return replace(base, columns=columns)

    def create_query_template(
        self,
        workspace_id: str,
        connection_id: str,
        name: str,
        query: str,
        primary_key: list[str] | None,
        cursor_field: str | None,
        date_field: str | None,
        *,
        role: str,
    ) -> TemplateRecord:
        """A SQL template: an admin's SELECT, checked by parsing in the source's dialect; its
        fields are the result columns a ``LIMIT 0`` probe reports."""
        require_admin(role, "creating SQL templates")
        source = self.source_for(workspace_id, connection_id)
        if not isinstance(source, QuerySource):
            raise Invalid.at(
                ("body", "connection_id"),
                "SQL templates need a database connection (postgresql, sqlite or mysql)",
            )
        text = check_query(query, source.dialect)
        try:
            columns = source.describe(text)
        except QueryError as exc:
            raise Invalid.at(QUERY_LOC, f"the source cannot run it: {exc}") from exc
        names = [col.name for col in columns]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:  # filters name columns, so each must be unambiguous
            raise Invalid.at(
                QUERY_LOC,
                f"returns the column(s) {', '.join(map(repr, repeated))} more than once; "
                "give each its own alias",
            )
        for key in primary_key or []:
            _check_field("primary_key", key, columns)
        _check_cursor(cursor_field, columns)
        _check_field("date_field", date_field, columns)
        return self._templates.create_custom(
            workspace_id,
            connection_id,
            name,
            None,
            columns,
            primary_key or [],
            cursor_field,
            date_field,
            query=text,
        )
