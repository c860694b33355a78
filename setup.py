"""The package's C parts (everything else is in pyproject.toml): the PostgreSQL COPY path's row
loop (src/egress/sources/postgresql/copy_native.py) and the MySQL rows' loop
(src/egress/sources/mysql/fetch_native.py). Optional: without a C compiler the package installs
and reads those rows in Python."""

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
    ]
)
