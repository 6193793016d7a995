"""Installs ``higherhrnet_plugin_startup.pth`` beside the package (see
``higherhrnet_plugin_startup.py``) and compiles the decoder's optional C
kernels; everything else is in pyproject.toml."""
import os
import shutil

from setuptools import Command, Extension, setup
from setuptools.command.build import build

STARTUP_PTH = 'higherhrnet_plugin_startup.pth'


class build_startup_hook(Command):
    """Put the startup ``.pth`` at the top of the wheel (site-packages).

    A regular build copies it into ``build_lib``, whose content becomes the
    wheel; an editable build (PEP 660) only links the sources, so the file
    goes straight into the folder setuptools turns into the editable wheel
    (its ``install_lib``).
    """
    description = 'add higherhrnet_plugin_startup.pth to the wheel'
    user_options = []
    editable_mode = False

    def initialize_options(self):
        self.target = None

    def finalize_options(self):
        command = 'install' if self.editable_mode else 'build_py'
        option = 'install_lib' if self.editable_mode else 'build_lib'
        self.target = getattr(self.get_finalized_command(command), option)

    def run(self):
        os.makedirs(self.target, exist_ok=True)
        shutil.copy(STARTUP_PTH, os.path.join(self.target, STARTUP_PTH))

    def get_outputs(self):
        return [os.path.join(self.target, STARTUP_PTH)]

    def get_output_mapping(self):
        return {}


# The decoder's refinement scan and NMS peaks in C (plain C API, no NumPy
# headers: see higherhrnet_plugin/codecs/_ae_kernels.c). Optional: where it
# does not compile (no C compiler), the install goes on and the decoder
# uses its NumPy path, which gives the same results, 2x slower.
AE_KERNELS = Extension('higherhrnet_plugin.codecs._ae_kernels',
                       ['higherhrnet_plugin/codecs/_ae_kernels.c'],
                       optional=True)

build.sub_commands.append(('build_startup_hook', None))
setup(cmdclass={'build_startup_hook': build_startup_hook},
      ext_modules=[AE_KERNELS])
