"""The package's C parts (everything else is in pyproject.toml): the PostgreSQL COPY path's row
loop (src/egress/sources/postgresql/copy_native.py), the MySQL rows' loop
(src/egress/sources/mysql/fetch_native.py) and JSONL's JSON columns (src/egress/sinks/
json_native.py). Optional: without a C compiler the package installs and does those in
Python."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "egress.sources.postgresql._copy_drain",
            ["src/egress/sources/postgresql/copy_drain.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        Extension(
            "egress.sources.mysql._fetch_rows",
            ["src/egress/sources/mysql/fetch_rows.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        Extension(
            "egress.sinks._json_compact",
            ["src/egress/sinks/json_compact.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
    ]
)
