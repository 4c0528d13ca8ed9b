# The one set of fused types every backend's hot loops are written over.
from libc.stdint cimport uint64_t

# Floating types: what the fast backends compute in.
ctypedef fused real_or_complex:
    float
    double
    float complex
    double complex

ctypedef fused real_t:
    float
    double

# The engine's compute types: integers reach backends as uint64 so that every product and
# sum wraps modulo 2**64 (defined behaviour in C); the engine casts back to the caller's
# integer type, which is exactly SciPy's wrapping result for int8 ... uint64.
ctypedef fused conv_t:
    float
    double
    float complex
    double complex
    uint64_t
