"""Egress: self-hosted asynchronous data extraction and bulk export."""

# libmysqlclient (mysql-connector-python's C extension, the MySQL source's fast read) loads
# the system's libstdc++, which finds no static TLS left once pyarrow is loaded, and shares
# OpenSSL with Python's ssl only when ssl is loaded first: so both load here, before anything
# else of Egress. A process that loaded pyarrow earlier reads MySQL through PyMySQL
# (``egress.sources.mysql.raw.AVAILABLE``).
import contextlib
import ssl  # noqa: F401

with contextlib.suppress(ImportError):
    import _mysql_connector  # noqa: F401

__version__ = "0.1.0"
