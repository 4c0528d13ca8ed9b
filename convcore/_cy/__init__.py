"""Shared Cython declarations (fused types, OpenMP shim, BLAS) for every backend."""
