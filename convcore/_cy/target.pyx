# cython: language_level=3
"""The build target's vector registers, as ``convcore/_cy/target.h`` states them.

Every hand-vectorized kernel sizes its register blocks from that header; this module only
reports it (``convcore.show_config()``).
"""

cdef extern from "target.h":
    const char* CC_ISA
    enum:
        CC_VBYTES
        CC_NREGS
        CC_FMA
        CC_VECTOR_EXTENSIONS


def describe():
    """The target the extensions were compiled for.

    Returns
    -------
    dict
        ``isa`` (``"avx512"``, ``"avx2"``, ``"avx"``, ``"sse2"``, ``"neon"`` or
        ``"generic"``), ``vector_bytes`` and ``registers`` (one vector register's size and
        how many there are), ``fma`` (a fused multiply-add instruction) and
        ``vector_extensions`` (the kernels are written in GCC/Clang vector types; otherwise
        the generic loops run).

    Examples
    --------
    >>> from convcore._cy.target import describe
    >>> describe()["vector_bytes"] in (16, 32, 64)
    True
    """
    return {"isa": CC_ISA.decode(), "vector_bytes": CC_VBYTES, "registers": CC_NREGS,
            "fma": bool(CC_FMA), "vector_extensions": bool(CC_VECTOR_EXTENSIONS)}
