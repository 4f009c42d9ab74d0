"""The one compiled part of civicrisk, optional: `app/services/_linear_rows.pyx` (Cython).

It speeds up the few-record linear path (see the module). Where no C compiler is found the build
skips it (`optional=True`) and the service runs the same arithmetic in plain Python, with the same
answers; `tests/app/test_linear_rows.py` fails if a compiler is present but the module is not built.
Everything else about the package is in pyproject.toml.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

LINEAR_ROWS = Extension(
    "app.services._linear_rows",
    ["app/services/_linear_rows.pyx"],
    # No fused multiply-add: x * weight - offset must round twice, as the Python loop and numpy do.
    extra_compile_args=["-ffp-contract=off"],
    optional=True,
)

setup(ext_modules=cythonize([LINEAR_ROWS], language_level=3, quiet=True))
