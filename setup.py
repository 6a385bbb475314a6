"""Builds the Cython extensions of ``_fastpath``; all metadata lives in pyproject.toml.

OpenMP (block-parallel decompression) is used when the compiler supports it; set
``DRANSPOSE_NO_OPENMP=1`` to build without it (``nthreads`` then runs serially).
"""

import os
import sys
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

FASTPATH = Path("src/_fastpath")

OPENMP = not os.environ.get("DRANSPOSE_NO_OPENMP") and sys.platform.startswith("linux")
OMP_FLAGS = ["-fopenmp"] if OPENMP else []

extensions = [
    Extension(
        f"_fastpath.{pyx.stem}",
        [str(pyx)],
        include_dirs=[numpy.get_include(), str(FASTPATH)],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3", *OMP_FLAGS],
        extra_link_args=OMP_FLAGS,
    )
    for pyx in sorted(FASTPATH.glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["src"],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
    )
)
