/* The build target's vector registers: the one place every hand-vectorized kernel reads its
   vector width and register count from (docs/design.md, "Instruction sets").

   A register block of accumulators must fit the register file together with the vectors it
   loads and the weight it broadcasts: a GCC vector wider than the target's registers
   compiles, as pairs (or quadruples) of registers, and then spills on every iteration.
   separable's vertical pass once declared 64-byte vectors whatever the target and kept 16 of
   them as accumulators: on AVX2 that is 32 ymm registers' worth, and it ran 7-12x slower
   than the same loop with 32-byte vectors.

   CC_VBYTES  bytes of one vector register
   CC_NREGS   vector registers the compiler may allocate
   CC_ISA     the name show_config() reports
   CC_FMA     1 when a multiply-add is one fused instruction

   The build picks the target with -march (setup.py: native by default, CONVCORE_MARCH=NAME
   for a named one, CONVCORE_PORTABLE=1 for the baseline x86-64). */
#ifndef CONVCORE_TARGET_H
#define CONVCORE_TARGET_H

#if defined(__AVX512F__)
#  define CC_VBYTES 64
#  define CC_NREGS 32
#  define CC_ISA "avx512"
#elif defined(__AVX2__)
#  define CC_VBYTES 32
#  define CC_NREGS 16
#  define CC_ISA "avx2"
#elif defined(__AVX__)
#  define CC_VBYTES 32
#  define CC_NREGS 16
#  define CC_ISA "avx"
#elif defined(__aarch64__) || defined(__ARM_NEON)
#  define CC_VBYTES 16
#  define CC_NREGS 32
#  define CC_ISA "neon"
#elif defined(__SSE2__)
#  define CC_VBYTES 16
#  define CC_NREGS 16
#  define CC_ISA "sse2"
#else
/* No known vector unit: GCC lowers 16-byte vectors to scalar code, still correct. */
#  define CC_VBYTES 16
#  define CC_NREGS 16
#  define CC_ISA "generic"
#endif

#if defined(__FMA__) || defined(__AVX512F__) || defined(__aarch64__)
#  define CC_FMA 1
#else
#  define CC_FMA 0
#endif

/* GCC/Clang vector extensions: the hand-vectorized kernels are written in them; other
   compilers get each backend's generic Cython loops. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(_MSC_VER)
#  define CC_VECTOR_EXTENSIONS 1
#else
#  define CC_VECTOR_EXTENSIONS 0
#endif

#endif
