"""Builds the Cython extensions of ``_fastpath``; all metadata lives in pyproject.toml."""

from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

FASTPATH = Path("src/_fastpath")

extensions = [
    Extension(
        f"_fastpath.{pyx.stem}",
        [str(pyx)],
        include_dirs=[numpy.get_include(), str(FASTPATH)],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
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
