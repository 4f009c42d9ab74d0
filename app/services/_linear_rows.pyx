# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The few-record linear path in C: each feature's contribution, and the largest of them.

`CompiledLinear.score_rows` and `explain.largest` use these when this module is built (setup.py,
optional) and fall back to their plain-Python loops when it is not. The arithmetic is the Python
loop's, term by term and in the same order ((x * weight - offset) + indicator), compiled without
fused multiply-add (setup.py), so both give the same bits (tests/app/test_linear_rows.py). For one
Chicago record (60 features) the Python loops took ~10 µs, a sixth of the request's in-process time.
"""

from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_CheckExact
from cpython.mem cimport PyMem_Free, PyMem_Malloc


cdef class RowTables:
    """One compiled linear model's per-column tables, as C arrays."""

    cdef double[::1] weight, offset, present, missing  # per numeric column, in layout.numeric order
    cdef long long[::1] order  # layout position i takes merged column order[i]
    cdef tuple lookups  # per categorical feature: value -> coefficient (a dict)
    cdef double[::1] defaults  # per categorical feature: the coefficient of an unlisted value
    cdef Py_ssize_t numeric_count, category_count

    def __init__(self, weight, offset, present, missing, order, tuple lookups, defaults):
        self.weight = memoryview(_doubles(weight))
        self.offset = memoryview(_doubles(offset))
        self.present = memoryview(_doubles(present))
        self.missing = memoryview(_doubles(missing))
        self.numeric_count = len(self.weight)
        if not (len(self.offset) == len(self.present) == len(self.missing) == self.numeric_count):
            raise ValueError("the numeric tables differ in length")
        self.lookups = tuple(dict(table) for table in lookups)
        self.defaults = memoryview(_doubles(defaults))
        self.category_count = len(self.lookups)
        if len(self.defaults) != self.category_count:
            raise ValueError("one default coefficient per categorical feature")
        import array

        self.order = memoryview(array.array("q", order))
        if sorted(order) != list(range(self.numeric_count + self.category_count)):
            raise ValueError("order must list every merged column once")

    def contributions(self, values, tuple categorical, Py_ssize_t row):
        """Record `row`'s contributions in layout order: `values` its numbers (None or NaN for a
        missing one), `categorical` the category columns (one list of values per feature)."""
        cdef Py_ssize_t p = self.numeric_count, j, k, width = self.numeric_count + self.category_count
        cdef double x
        if len(values) != p or len(categorical) != self.category_count:
            raise ValueError("the record does not have the model's features")
        cdef double* merged = <double*> PyMem_Malloc(width * sizeof(double))
        if merged == NULL:
            raise MemoryError()
        try:
            for j in range(p):
                value = values[j]
                if value is None:
                    merged[j] = self.missing[j]
                    continue
                # A JSON integer converts as Python's int * float converts it (OverflowError alike).
                x = PyFloat_AS_DOUBLE(value) if PyFloat_CheckExact(value) else float(value)
                if x != x:
                    merged[j] = self.missing[j]
                else:
                    merged[j] = x * self.weight[j] - self.offset[j] + self.present[j]
            for k in range(self.category_count):
                coefficient = (<dict>self.lookups[k]).get(categorical[k][row])
                merged[p + k] = self.defaults[k] if coefficient is None else <double>coefficient
            return [merged[self.order[j]] for j in range(width)]
        finally:
            PyMem_Free(merged)


def largest(list row, Py_ssize_t top):
    """Positions of the `top` largest magnitudes in a list of floats, largest first, the earlier
    position on ties (as sorted(..., reverse=True), which is stable); None when a value is not a
    float or is NaN, whose order under sorted() the caller's own loop keeps."""
    cdef Py_ssize_t n = len(row), i, place, filled = 0
    cdef double magnitude
    cdef double[8] best
    cdef Py_ssize_t[8] where
    if top > 8 or top < 0:
        return None
    if top > n:
        top = n
    for i in range(n):
        value = row[i]
        if not PyFloat_CheckExact(value):
            return None
        magnitude = abs(PyFloat_AS_DOUBLE(value))
        if magnitude != magnitude:
            return None
        if filled == top and (top == 0 or magnitude <= best[top - 1]):
            continue  # not larger than the last kept: a tie goes to the earlier position
        place = filled if filled < top else top - 1
        while place > 0 and best[place - 1] < magnitude:
            best[place] = best[place - 1]
            where[place] = where[place - 1]
            place -= 1
        best[place] = magnitude
        where[place] = i
        if filled < top:
            filled += 1
    return [where[i] for i in range(filled)]


cdef object _doubles(values):
    import array

    return array.array("d", [float(value) for value in values])
