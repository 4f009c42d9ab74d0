"""The one compiled part of civicrisk, optional: `app/services/_linear_rows.pyx` (Cython).

It speeds up the few-record linear path and the batch assembly (see the module). Where no C compiler
works, the build skips it and the service runs the same code in Python, with the same answers; the
service logs a warning at start-up, and `tests/app/test_linear_rows.py` fails if a compiler is present
but the module was not built. Everything else about the package is in pyproject.toml.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

LINEAR_ROWS = Extension(
    "app.services._linear_rows",
    ["app/services/_linear_rows.pyx"],
    # No fused multiply-add: x * weight - offset must round twice, as the Python loop and numpy do.
    extra_compile_args=["-ffp-contract=off"],
    optional=True,
)


class OptionalBuildExt(build_ext):
    """`optional=True` lets a compile error pass, but not a compiler that cannot be run at all (a
    missing or unset CC raises OSError): either way, install without the module."""

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:  # any failure leaves the Python loops serving
            print(f"warning: {ext.name} not built ({error}); the Python loops will serve")


setup(
    ext_modules=cythonize([LINEAR_ROWS], language_level=3, quiet=True),
    cmdclass={"build_ext": OptionalBuildExt},
)
