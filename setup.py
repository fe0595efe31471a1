"""Build rlb's Cython extensions against the system's libdpdk (pkg-config)."""
import os
import shlex
import subprocess

from setuptools import Extension, setup


def pkg_config(*args):
    out = subprocess.run(["pkg-config", *args, "libdpdk"], check=True,
                         capture_output=True, text=True).stdout
    return shlex.split(out)


def extensions():
    from Cython.Build import cythonize
    from Cython.Compiler import Options

    Options.warning_errors = True       # a Cython warning fails the build

    cflags = pkg_config("--cflags") + ["-O3", "-Wall", "-Werror", "-Wno-unused-function",
                                       "-Wno-deprecated-declarations"]
    libs = pkg_config("--libs")
    def ext(name):
        return Extension(name, [name.replace(".", "/") + ".pyx"], include_dirs=["rlb/core"],
                         extra_compile_args=cflags, extra_link_args=libs)

    exts = [ext("rlb.core.dataplane"), ext("rlb.modes._fnat"), ext("rlb.modes._nat"),
            ext("rlb.modes._snat"), ext("rlb.modes._dr"), ext("rlb.modes._tunnel"),
            ext("rlb.sched._builtin")]
    return cythonize(
        exts,
        language_level=3,
        annotate=bool(os.environ.get("RLB_ANNOTATE")),
        compiler_directives={"boundscheck": False, "wraparound": False,
                             "cdivision": True, "initializedcheck": False},
    )


setup(ext_modules=extensions())
