# cython: language_level=3
"""Large results reuse the memory of large results that were freed.

A fresh array of tens of megabytes costs more than many convolutions that fill it: glibc maps
it from the kernel (``mmap``) and, on first touch, the kernel zeroes every page (measured
here: 64 MB fresh and filled 8.8 ms, the same array already touched 2.9 ms). When the result
of a call is dropped (the common loop ``for image in images: out = convolve(image, k)``), the
next result of the same size can take over its pages instead.

So ``empty()`` allocates through a NumPy memory handler (NEP 49) whose ``free`` keeps blocks of
``MIN_BLOCK`` bytes and more in a small pool (at most ``SLOTS`` blocks and ``cap`` bytes idle;
the oldest are returned to the system first) and whose ``malloc`` hands out a pooled block of
exactly the size asked for. Only arrays made by ``empty()`` use the handler; the array keeps
its handler for life, so it is freed through the pool whoever drops it. Every block carries
its own size in a header, so nothing depends on the size NumPy reports at ``free``.

Where in its page a result starts matters too. A loop that reads input rows and writes output
rows a multiple of 4 KiB long (1024 float32 columns, 512 float64) sees a store and a later load
as the same address when their addresses agree in the low 12 bits, and the load waits. NumPy
places every large array 16 bytes into a page, and a block here started 128 bytes in: the
input and the result 112 bytes apart in their pages, and the openmp loop 15-25% slower
(1024^2 and 2048^2 float32 * 5x5, one thread) than with the two half a page apart. So results
of ``PLACE_MIN`` bytes and more carry a page of slack, and ``empty(..., near=x)`` starts the
data half a page from where ``x``'s starts (docs/design.md, "Where a result starts").
"""

cimport numpy as cnp

cnp.import_array()

cdef extern from *:
    """
    #include <stdint.h>
    #include <stdlib.h>
    #include <string.h>
    #include <Python.h>
    #include <pythread.h>
    #include <numpy/arrayobject.h>

    /* A 64-byte header keeps the data as aligned as the block (posix_memalign: 64): the
       block's size at its start, the block's address in the 8 bytes before the data. Blocks
       of CC_PLACE_MIN bytes and more have a page of slack, so the data can start anywhere
       (in steps of 64 bytes) in its page. */
    #define CC_HEADER 64
    #define CC_SLOTS 8
    #define CC_PAGE 4096
    #define CC_PLACE_MIN ((size_t)256 << 10)

    /* Where in its page the next placed block's data should start (set by empty(), which
       holds the GIL while NumPy calls cc_malloc; another thread's empty() slipping in between
       can only misplace a result, never corrupt one). */
    static uintptr_t cc_target = CC_PAGE / 2 + 16;

    static void* cc_slots[CC_SLOTS];        /* idle blocks (header pointers), oldest first */
    static size_t cc_nslots = 0;
    static size_t cc_idle_bytes = 0;
    static size_t cc_cap = 0;
    static size_t cc_min_block = (size_t)4 << 20;
    static size_t cc_reused = 0;
    static PyThread_type_lock cc_lock = NULL;

    static size_t cc_size_of(void* block) { return *(size_t*)block; }

    static size_t cc_slack(size_t size) { return size >= CC_PLACE_MIN ? CC_PAGE : 0; }

    static void* cc_new_block(size_t size) {
        void* block = NULL;
        if (size > (size_t)-1 - CC_HEADER - CC_PAGE) return NULL;
        if (posix_memalign(&block, 64, size + CC_HEADER + cc_slack(size)) != 0) return NULL;
        *(size_t*)block = size;
        return block;
    }

    /* The data of `block`, placed at cc_target in its page when the block has slack. */
    static void* cc_data(void* block) {
        uintptr_t first = (uintptr_t)block + CC_HEADER, shift = 0;
        char* data;
        if (cc_slack(cc_size_of(block)))
            shift = (cc_target - first) & (uintptr_t)(CC_PAGE - 1) & ~(uintptr_t)63;
        data = (char*)(first + shift);
        ((void**)data)[-1] = block;
        return data;
    }

    static void* cc_block_of(void* data) { return ((void**)data)[-1]; }

    /* Remove idle slot i (the caller holds the lock) and return its block. */
    static void* cc_remove(size_t i) {
        void* block = cc_slots[i];
        memmove(cc_slots + i, cc_slots + i + 1, (cc_nslots - i - 1) * sizeof(void*));
        cc_nslots--;
        cc_idle_bytes -= cc_size_of(block);
        return block;
    }

    /* Take an idle block of exactly `size` bytes, or NULL. */
    static void* cc_take(size_t size) {
        void* found = NULL;
        PyThread_acquire_lock(cc_lock, WAIT_LOCK);
        for (size_t i = cc_nslots; i-- > 0;) {      /* newest first: warmest in cache */
            if (cc_size_of(cc_slots[i]) == size) {
                found = cc_remove(i);
                cc_reused++;
                break;
            }
        }
        PyThread_release_lock(cc_lock);
        return found;
    }

    /* Keep `block` idle if it fits the pool (evicting the oldest), else free it. The blocks
       to free are collected first and freed outside the lock. */
    static void cc_give(void* block) {
        size_t size = cc_size_of(block);
        void* evicted[CC_SLOTS + 1];
        size_t n_evicted = 0;
        PyThread_acquire_lock(cc_lock, WAIT_LOCK);
        if (size < cc_min_block || size > cc_cap) {
            evicted[n_evicted++] = block;
        } else {
            while (cc_nslots > 0 && (cc_nslots == CC_SLOTS || cc_idle_bytes + size > cc_cap))
                evicted[n_evicted++] = cc_remove(0);
            cc_slots[cc_nslots++] = block;
            cc_idle_bytes += size;
        }
        PyThread_release_lock(cc_lock);
        for (size_t i = 0; i < n_evicted; i++) free(evicted[i]);
    }

    static void* cc_malloc(void* ctx, size_t size) {
        void* block = NULL;
        (void)ctx;
        if (size >= cc_min_block) block = cc_take(size);
        if (!block) block = cc_new_block(size);
        return block ? cc_data(block) : NULL;
    }

    static void* cc_calloc(void* ctx, size_t n, size_t elsize) {
        /* Zeroed arrays are not pooled results; the header still has to be there. */
        size_t size;
        void* data;
        if (elsize && n > ((size_t)-1 - CC_HEADER) / elsize) return NULL;
        size = n * elsize;
        data = cc_malloc(ctx, size);
        if (data) memset(data, 0, size);
        return data;
    }

    static void* cc_realloc(void* ctx, void* data, size_t size) {
        /* A new block and a copy: the data's place in its block differs between blocks. */
        void* block;
        void* fresh;
        size_t kept;
        if (!data) return cc_malloc(ctx, size);
        block = cc_block_of(data);
        fresh = cc_malloc(ctx, size);
        if (!fresh) return NULL;
        kept = cc_size_of(block) < size ? cc_size_of(block) : size;
        memcpy(fresh, data, kept);
        cc_give(block);
        return fresh;
    }

    static void cc_free(void* ctx, void* data, size_t size_reported) {
        (void)ctx; (void)size_reported;
        if (data) cc_give(cc_block_of(data));
    }

    static PyDataMem_Handler cc_handler = {
        "convcore_result_pool", 1,
        {NULL, cc_malloc, cc_calloc, cc_realloc, cc_free}
    };

    static PyObject* cc_handler_capsule(void) {
        if (!cc_lock) cc_lock = PyThread_allocate_lock();
        if (!cc_lock) return PyErr_NoMemory();
        return PyCapsule_New(&cc_handler, "mem_handler", NULL);
    }

    static void cc_place_near(uintptr_t address) {
        cc_target = (address + CC_PAGE / 2) & (uintptr_t)(CC_PAGE - 1);
    }

    static void cc_set_limits(size_t cap, size_t min_block) {
        PyThread_acquire_lock(cc_lock, WAIT_LOCK);
        cc_cap = cap;
        cc_min_block = min_block;
        PyThread_release_lock(cc_lock);
    }

    static void cc_trim(void) {
        /* Free the oldest idle blocks until the pool is within its cap again. */
        void* evicted[CC_SLOTS];
        size_t n_evicted = 0;
        PyThread_acquire_lock(cc_lock, WAIT_LOCK);
        while (cc_nslots > 0 && cc_idle_bytes > cc_cap)
            evicted[n_evicted++] = cc_remove(0);
        PyThread_release_lock(cc_lock);
        for (size_t i = 0; i < n_evicted; i++) free(evicted[i]);
    }
    """
    object cc_handler_capsule()
    void cc_place_near(size_t address)
    enum: CC_PLACE_MIN
    void cc_set_limits(size_t cap, size_t min_block)
    void cc_trim()
    size_t cc_idle_bytes
    size_t cc_nslots
    size_t cc_reused
    size_t cc_cap
    size_t cc_min_block

cdef extern from "numpy/arrayobject.h":
    object PyDataMem_SetHandler(object handler)

import numpy as np

_HANDLER = cc_handler_capsule()
SLOTS = 8


PLACE_MIN = CC_PLACE_MIN


def empty(shape, dtype, near=None):
    """``numpy.empty(shape, dtype)`` whose memory comes from (and returns to) the pool.

    Parameters
    ----------
    shape, dtype
        As for ``numpy.empty``.
    near : numpy.ndarray, optional
        The array the result will be computed from: a result of ``PLACE_MIN`` bytes or more
        starts half a page (2 KiB) from where `near`'s data starts in its page (the module
        docstring says why). Without it, 2 KiB + 16 bytes into its page.

    Returns
    -------
    numpy.ndarray
        Uninitialized, C-contiguous, owning its memory.
    """
    cdef cnp.ndarray anchor
    if isinstance(near, cnp.ndarray):
        anchor = near
        cc_place_near(<size_t>cnp.PyArray_DATA(anchor))
    else:
        cc_place_near(16)
    previous = PyDataMem_SetHandler(_HANDLER)
    try:
        return np.empty(shape, dtype)
    finally:
        PyDataMem_SetHandler(previous)


def set_limits(Py_ssize_t cap, Py_ssize_t min_block):
    """Keep at most `cap` idle bytes, in blocks of at least `min_block` bytes (0: no pool)."""
    if cap < 0 or min_block < 0:
        raise ValueError("cap and min_block must be non-negative")
    cc_set_limits(cap, min_block)
    cc_trim()


def info():
    """Idle bytes and blocks in the pool, blocks reused so far, and the limits."""
    return {"idle_bytes": cc_idle_bytes, "idle_blocks": cc_nslots, "reused": cc_reused,
            "cap": cc_cap, "min_block": cc_min_block}
