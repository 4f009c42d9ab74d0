"""The compiled record loops, or None where they were not built.

`_linear_rows` (Cython, built by setup.py at install where a C compiler is found) computes a linear
model's contributions for one record and picks the largest, splits a decoded batch into arrays, and
assembles a batch's answers; `CompiledLinear.score_rows`, `explain.largest`, `TypedRecords.batch`
and `explain._results` use it when it is here and their Python code otherwise, with the same
answers. Read `compiled` at call time (not imported by name), so a test can switch it off.
"""

from __future__ import annotations

from types import ModuleType

compiled: ModuleType | None
try:
    from app.services import _linear_rows as compiled
except ImportError:  # installed without a C compiler: the Python loops serve
    compiled = None
