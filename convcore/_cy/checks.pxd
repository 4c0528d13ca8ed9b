# Argument checks shared by the native entry points (backends/*/_cy.pyx).
#
# Every def function that hands pointers to C loops checks, before releasing the GIL, that
# what it will read and write lies inside the arrays it was given: a bad call raises
# ValueError or TypeError instead of reading or writing out of bounds. The checks are loops
# over the index tables (O(rows + columns)), small next to the O(outputs x taps) work.

cdef inline int check_at_least(Py_ssize_t value, Py_ssize_t low, str name) except -1:
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return 0


cdef inline int check_table(const Py_ssize_t* table, Py_ssize_t count, Py_ssize_t limit,
                            str name) except -1:
    """Every entry is -1 (outside the signal) or an index in [0, limit)."""
    cdef Py_ssize_t i
    for i in range(count):
        if table[i] < -1 or table[i] >= limit:
            raise ValueError(f"{name}[{i}] = {table[i]} is outside [-1, {limit})")
    return 0


cdef inline Py_ssize_t shape_product(shape, Py_ssize_t ndim, str name) except -1:
    """Product of the first `ndim` entries of `shape`, each a non-negative int (no overflow)."""
    cdef Py_ssize_t d, n, total = 1
    if len(shape) != ndim:
        raise ValueError(f"{name} must have {ndim} entries, got {len(shape)}")
    for d in range(ndim):
        n = shape[d]
        if n < 0:
            raise ValueError(f"{name}[{d}] must be non-negative, got {n}")
        if n and total > (<Py_ssize_t>1 << 62) // n:
            raise ValueError(f"{name} {tuple(shape)} is too large")
        total *= n
    return total
