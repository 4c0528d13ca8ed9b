# cython: language_level=3, boundscheck=False, wraparound=False
"""An empty OpenMP region, so the engine can measure what starting a team costs here.

``convcore.runtime.contention`` times :func:`region` with one thread and with two to learn the
dispatch overhead that its "is another thread worth it" decision weighs against the work.
"""

from cython.parallel cimport prange

from convcore._cy.openmp cimport CONVCORE_HAVE_OPENMP

HAVE_OPENMP = bool(CONVCORE_HAVE_OPENMP)


def region(int threads):
    """Start and join a team of `threads` threads that do nothing.

    Examples
    --------
    >>> from convcore._cy import team
    >>> team.region(1)
    """
    cdef int i
    cdef int total = 0
    if threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads}")
    with nogil:
        for i in prange(threads, num_threads=threads, schedule="static", chunksize=1):
            total += 1
