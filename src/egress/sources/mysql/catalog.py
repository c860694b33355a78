"""The MySQL catalog queries: tables and their columns, MariaDB's JSON checks, primary
keys, and the connection's user's privileges."""

from __future__ import annotations

SYSTEM_SCHEMAS = ("information_schema", "mysql", "performance_schema", "sys")

CATALOG_SQL = """
SELECT c.TABLE_SCHEMA, c.TABLE_NAME, t.TABLE_TYPE, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE,
       c.NUMERIC_PRECISION, c.NUMERIC_SCALE, c.IS_NULLABLE, c.COLUMN_KEY
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t
  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
WHERE c.TABLE_SCHEMA = %s
ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION
"""
# MariaDB's JSON is LONGTEXT plus a CHECK (json_valid(`col`)) named after the column; MySQL's
# CHECK_CONSTRAINTS has no TABLE_NAME (its JSON is a type of its own), so this fails there.
JSON_CHECKS_SQL = """
SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = %s AND CHECK_CLAUSE = CONCAT('json_valid(`', CONSTRAINT_NAME, '`)')
"""
PK_SQL = """
SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = %s AND CONSTRAINT_NAME = 'PRIMARY'
ORDER BY TABLE_NAME, ORDINAL_POSITION
"""
# UNIQUE indexes over plain columns (MySQL 8's functional key parts have no COLUMN_NAME).
UNIQUE_SQL = """
SELECT s.TABLE_SCHEMA, s.TABLE_NAME, s.INDEX_NAME, s.COLUMN_NAME
FROM information_schema.STATISTICS s
WHERE s.TABLE_SCHEMA = %s AND s.NON_UNIQUE = 0 AND s.INDEX_NAME <> 'PRIMARY'
  AND NOT EXISTS (
    SELECT 1 FROM information_schema.STATISTICS f
    WHERE f.TABLE_SCHEMA = s.TABLE_SCHEMA AND f.TABLE_NAME = s.TABLE_NAME
      AND f.INDEX_NAME = s.INDEX_NAME AND f.COLUMN_NAME IS NULL)
ORDER BY s.TABLE_NAME, s.INDEX_NAME, s.SEQ_IN_INDEX
"""
# The DATA_TYPE of some columns of one table: an export job's key, which an ENUM or a SET
# cannot be (``domain.export.unpageable_key_reason``).
KEY_TYPES_SQL = """
SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND COLUMN_NAME IN %s
"""
WRITES = {"INSERT", "UPDATE", "DELETE", "CREATE"}
# The current user's privileges at every level; information_schema lists other users' too
# when the user may read the grant tables, hence the GRANTEE filter.
ACCESS_SQL = """
SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = %(g)s
UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = %(g)s
UNION SELECT PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = %(g)s
"""
