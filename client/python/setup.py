"""Build steps pyproject.toml cannot express: netcore_pb2.py is generated from
proto/netcore.proto with protoc (Debian's protobuf-compiler) while the package is
built, and shipped in it together with a copy of the error table
(common/include/nc_errors.h), so an installed netcore_net never needs the
repository nor protoc at import.

The two inputs are taken from the repository (../../proto, ../include) when
building from a checkout, or from _build_inputs/ inside an sdist, which the
sdist command below fills.
"""

import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
SDIST_DIR = "_build_inputs"
INPUTS = {  # file name -> where it lives in a checkout
    "netcore.proto": os.path.join(HERE, "..", "..", "proto", "netcore.proto"),
    "nc_errors.h": os.path.join(HERE, "..", "..", "common", "include", "nc_errors.h"),
}


def find_input(name):
    for path in (os.path.join(HERE, SDIST_DIR, name), INPUTS[name]):
        if os.path.exists(path):
            return os.path.normpath(path)
    raise SystemExit("netcore_net build: %s not found (build from the netcore repository "
                     "or from its sdist)" % name)


class BuildPy(build_py):
    """Adds netcore_pb2.py (from protoc) and nc_errors.h to the built package."""

    def run(self):
        super().run()
        out = os.path.join(self.build_lib, "netcore_net")
        self.mkpath(out)
        proto = find_input("netcore.proto")
        protoc = os.environ.get("PROTOC") or shutil.which("protoc")
        if not protoc:
            raise SystemExit("netcore_net build: protoc not found (apt-get install "
                             "protobuf-compiler, or set PROTOC)")
        subprocess.run([protoc, "--proto_path=" + os.path.dirname(proto),
                        "--python_out=" + out, os.path.basename(proto)], check=True)
        self.copy_file(find_input("nc_errors.h"), os.path.join(out, "nc_errors.h"))

    def get_outputs(self, include_bytecode=True):
        out = os.path.join(self.build_lib, "netcore_net")
        return super().get_outputs(include_bytecode) + [
            os.path.join(out, "netcore_pb2.py"), os.path.join(out, "nc_errors.h")]


class Sdist(sdist):
    """Puts the two inputs into the sdist so a wheel can be built from it alone."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        dest = os.path.join(base_dir, SDIST_DIR)
        self.mkpath(dest)
        for name in INPUTS:
            self.copy_file(find_input(name), os.path.join(dest, name))


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
