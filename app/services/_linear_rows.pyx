# cython: language_level=3
# Bounds checks stay on (the Cython default): the lists and tuples here come from callers, and an index
# out of range must raise IndexError as in Python, never read past an array; they cost ~1 ns each.
"""Record loops in C: a linear model's contributions for a few records and the largest of them;
a decoded batch split into its number array and category columns; a batch's answers assembled.

`CompiledLinear.score_rows`, `explain.largest`, `TypedRecords.batch` and `explain._results` use
these when this module is built (setup.py, optional) and fall back to their Python code when it is
not, with the same answers (tests/app/test_linear_rows.py and the tests run with both). The
arithmetic is the Python loop's, term by term and in the same order ((x * weight - offset) +
indicator), compiled without fused multiply-add (setup.py), so both give the same bits. For one
Chicago record (60 features) the Python loops took ~10 µs, a sixth of the request's in-process
time; for a 10,000-record batch the split and the assembly took ~20 ms of ~105.
"""

from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_CheckExact
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport NAN

import array


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
        self.lookups = tuple(dict(table) for table in lookups)  # plain dicts, of their own
        self.defaults = memoryview(_doubles(defaults))
        self.category_count = len(self.lookups)
        if len(self.defaults) != self.category_count:
            raise ValueError("one default coefficient per categorical feature")
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
    return array.array("d", [float(value) for value in values])


def split_rows(list rows, double[:, ::1] numeric, Py_ssize_t category_count, str missing_category):
    """A batch of decoded records (tuples: the numbers, then the categories) into `numeric`, an
    (n, p) float64 array filled here (None becomes NaN, a JSON integer a float, as numpy's object to
    float conversion gives them), and the category columns (one list per feature, None becoming
    `missing_category`), returned. What `TypedRecords.batch` does with numpy, without the object
    table it builds on the way (~15 ms for 10,000 Chicago records)."""
    cdef Py_ssize_t n = numeric.shape[0], p = numeric.shape[1], i, j, k
    cdef tuple record
    if len(rows) != n:
        raise ValueError("one row of numbers per record")
    columns = [[None] * n for k in range(category_count)]
    for i in range(n):
        record = <tuple>rows[i]
        if len(record) != p + category_count:
            raise ValueError("a record does not have the model's features")
        for j in range(p):
            value = record[j]
            if value is None:
                numeric[i, j] = NAN
            elif PyFloat_CheckExact(value):
                numeric[i, j] = PyFloat_AS_DOUBLE(value)
            else:
                numeric[i, j] = float(value)
        for k in range(category_count):
            value = record[p + k]
            (<list>columns[k])[i] = missing_category if value is None else value
    return tuple(columns)


def answers(
    list scores, list labels, Py_ssize_t top, list features, list contributions, list numbers,
    categorical, dict category_of, names, reason,
):
    """`explain._results` in one C loop: record i's reasons are positions i*top .. i*top+top-1 of the
    flat lists; each distinct (feature, contribution, value) is built once by `reason(name, feature,
    contribution, value)` and shared; a zero or NaN contribution gives no reason. The same answers,
    objects shared alike (tests/app/test_scorers.py compares the two)."""
    cdef Py_ssize_t n = len(scores), i, place, at = 0
    cdef dict built = {}
    cdef list results = [None] * n, group
    if len(labels) != n or not len(features) == len(contributions) == len(numbers) == n * top:
        raise ValueError("top entries per record in each list")
    for i in range(n):
        group = []
        for place in range(top):
            feature = features[at]
            contribution = contributions[at]
            k = category_of.get(feature)
            if k is not None:
                value = categorical[k][i]
            else:
                value = numbers[at]
                # +0.0 turns -0.0 into 0.0: the two are equal as keys, so they must read the same.
                value = None if value is None or value != value else value + 0.0
            at += 1
            key = (feature, contribution, value)
            found = built.get(key, built)  # `built` itself marks a key not seen yet
            if found is built:
                found = (
                    reason(names[feature], feature, contribution, value)
                    if contribution != 0.0 and contribution == contribution
                    else None
                )
                built[key] = found
            if found is not None:
                group.append(found)
        results[i] = {"score": scores[i], "tier": labels[i], "reasons": group}
    return results
