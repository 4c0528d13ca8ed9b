"""Build the Cython extensions of convcore.

Only the compiled parts live here; metadata is in pyproject.toml. Every backend package's
``backends/<name>/_cy.pyx`` becomes ``convcore.backends.<name>._cy`` (its own folder on the
include path, for its C header) and every ``convcore/_cy/*.pyx`` becomes ``convcore._cy.*``,
so adding a backend needs no edit of this file.

Environment switches
--------------------
CONVCORE_REQUIRE_OPENMP=1  fail the build when the compiler cannot do OpenMP (CI sets it).
CONVCORE_PORTABLE=1        no ``-march=native``: a binary that runs on any x86-64.
CONVCORE_MARCH=NAME        ``-march=NAME`` instead of native: build another target's code on
                           this machine (``x86-64-v3`` is AVX2 + FMA, ``x86-64-v2`` SSE4.2,
                           ``x86-64-v4`` AVX-512); the kernels size their vectors and register
                           blocks for it (convcore/_cy/target.h).
"""

import glob
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import warnings

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_TEST = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d\\n", n > 0);
        return 0;
    }
    """
)


def _compiler_accepts(compiler, flags, source, link_flags=(), run=False):
    """Compile (and optionally run) a tiny program: does this compiler take these flags?"""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(source)
        try:
            objects = compiler.compile([src], output_dir=tmp, extra_postargs=list(flags))
            if not run:
                return True
            exe = os.path.join(tmp, "probe")
            compiler.link_executable(objects, exe, extra_postargs=list(link_flags))
            return subprocess.run([exe], capture_output=True, timeout=30).returncode == 0
        except Exception:
            return False


# Flags for one extension only. naive's textbook loop is scalar and front-end bound, so its
# speed depends on where gcc places each loop: the same source, shifted 32 bytes by
# unrelated argument checks or a longer module name, ran 256^2 k3 float64 at 0.44 or
# 0.58 ms, and 1-D 1e5 k16 at 0.68 or 0.98 ms. Aligning every loop (not only those gcc
# guesses iterate often) to a 64-byte line makes the layout independent of the code around
# it: built three ways, every measured cell stayed within 4% of the pre-v2 build or faster.
EXTENSION_FLAGS = {"convcore.backends.naive._cy": ["-falign-loops=64",
                                                   "--param=align-loop-iterations=1"]}


class BuildExtWithProbes(build_ext):
    """build_ext that probes OpenMP and per-compiler optimisation flags before compiling."""

    def build_extensions(self):
        compiler = self.compiler
        is_msvc = compiler.compiler_type == "msvc"
        if is_msvc:
            base, omp_compile, omp_link = ["/O2"], ["/openmp"], []
        else:
            base, omp_compile, omp_link = ["-O3"], ["-fopenmp"], ["-fopenmp"]
        openmp = _compiler_accepts(compiler, omp_compile, OPENMP_TEST, omp_link, run=True)
        if not openmp:
            message = "convcore: the compiler cannot build OpenMP code; building serial loops."
            if os.environ.get("CONVCORE_REQUIRE_OPENMP") == "1":
                raise RuntimeError(message + " (CONVCORE_REQUIRE_OPENMP=1)")
            warnings.warn(message)
            omp_compile, omp_link = [], []

        native = []
        march = os.environ.get("CONVCORE_MARCH", "").strip()
        if march and not is_msvc:
            flag = f"-march={march}"
            if not _compiler_accepts(compiler, [flag], "int main(void){return 0;}\n"):
                raise RuntimeError(f"convcore: the compiler does not accept {flag} "
                                   f"(CONVCORE_MARCH={march!r})")
            native = [flag]
        elif not is_msvc and os.environ.get("CONVCORE_PORTABLE") != "1":
            # docs/design.md, "Performance notes": -march=native prefers 256-bit vectors; asking for 512 gave 1.15-1.35x
            # on large kernels where AVX-512 exists. Each flag is probed on its own.
            for flag in ("-march=native", "-mprefer-vector-width=512"):
                if _compiler_accepts(compiler, native + [flag], "int main(void){return 0;}\n"):
                    native.append(flag)
        # docs/design.md, "Performance notes": predictive commoning spills the register accumulators.
        extra = [] if is_msvc else ["-fno-predictive-commoning"]
        if extra and not _compiler_accepts(compiler, extra, "int main(void){return 0;}\n"):
            extra = []

        compile_args = base + native + extra + omp_compile
        for ext in self.extensions:
            own = [] if is_msvc else [f for f in EXTENSION_FLAGS.get(ext.name, ())
                                      if _compiler_accepts(compiler, [f], "int main(void)"
                                                           "{return 0;}\n")]
            ext.extra_compile_args = list(compile_args) + own
            ext.extra_link_args = list(omp_link)
        self._write_build_info(openmp, compile_args)
        super().build_extensions()

    def _write_build_info(self, openmp, compile_args):
        info = {
            "openmp": openmp,
            "compile_args": compile_args,
            "portable": os.environ.get("CONVCORE_PORTABLE") == "1",
            "march": os.environ.get("CONVCORE_MARCH", "").strip() or None,
            "compiler": " ".join(getattr(self.compiler, "compiler_so", []) or [])[:200],
            "python": sys.version.split()[0],
            "platform": sysconfig.get_platform(),
        }
        text = json.dumps(info, indent=1) + "\n"
        # In place (editable) and into the build directory (regular install).
        targets = [os.path.join("convcore", "_build_info.json")]
        if not self.inplace:
            targets.append(os.path.join(self.build_lib, "convcore", "_build_info.json"))
        for target in targets:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as f:
                f.write(text)


def _extensions():
    sources = sorted(glob.glob("backends/*/_cy.pyx")) + sorted(glob.glob("convcore/_cy/*.pyx"))
    extensions = []
    for source in sources:
        folder = os.path.dirname(source)
        stem = os.path.splitext(os.path.basename(source))[0]
        if source.startswith("backends"):
            name = f"convcore.backends.{os.path.basename(folder)}.{stem}"
        else:
            name = f"convcore._cy.{stem}"
        extensions.append(
            Extension(
                name,
                [source],
                include_dirs=[numpy.get_include(), "convcore/_cy", folder],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
            )
        )
    return cythonize(
        extensions,
        compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False,
                             "cdivision": True, "initializedcheck": False},
        include_path=["."],
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExtWithProbes},
      package_data={"convcore": ["_build_info.json"]})
