"""Installs ``higherhrnet_plugin_startup.pth`` beside the package (see
``higherhrnet_plugin_startup.py``); everything else is in pyproject.toml."""
import os
import shutil

from setuptools import Command, setup
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


build.sub_commands.append(('build_startup_hook', None))
setup(cmdclass={'build_startup_hook': build_startup_hook})
