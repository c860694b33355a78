"""The package's one C part (everything else is in pyproject.toml): the COPY path's row loop
(src/egress/sources/postgresql/copy_native.py). Optional: without a C compiler the package
installs and reads COPY rows in Python."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "egress.sources.postgresql._copy_drain",
            ["src/egress/sources/postgresql/copy_drain.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
