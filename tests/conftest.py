"""Shared test helpers: locating ../shared, building models from configs,
loading tools, the converted official tiny checkpoint."""
import importlib.util
import os
from pathlib import Path

import pytest

import higherhrnet_plugin  # noqa: F401  (registers modules, applies shims)
from higherhrnet_plugin.testing import SHARED_ROOT, shared_path  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
SHARED = SHARED_ROOT
CONFIGS = REPO / 'configs' / 'higherhrnet'
TINY_CONFIG = CONFIGS / 'coco' / 'higherhrnet_hrnet-tiny_1xb2-30e_coco-256x256.py'

os.environ.setdefault('OMP_NUM_THREADS', '2')


def build_model(config_path, **cfg_options):
    """Build the model of a config (optionally with dotted overrides)."""
    from mmengine.config import Config
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(str(config_path))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return MODELS.build(cfg.model)


def load_tool(name: str):
    """``tools/<name>.py`` as a module (tools are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        f'_hhr_tool_{name}', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=['compiled', 'numpy'])
def host_path(request, monkeypatch):
    """The decoder's CPU path under test: with its compiled kernels
    (``codecs/_ae_kernels.c``, built by the install; their absence skips
    the test, or fails it in CI) or with NumPy alone."""
    from higherhrnet_plugin.codecs import ae_maps
    if request.param == 'numpy':
        monkeypatch.setattr(ae_maps, '_ae_kernels', None)
    elif not ae_maps.kernels_built():
        message = 'higherhrnet_plugin.codecs._ae_kernels is not built'
        if os.environ.get('CI'):
            pytest.fail(message + ' (pip install -e . compiles it)')
        pytest.skip(message)
    return request.param


@pytest.fixture(scope='session')
def shared_coco():
    """The four real COCO images of ../shared and their annotations: the tiny
    config's data and the poses of the decoder cases
    (``higherhrnet_plugin.testing.decoder_cases``). Skips the test without
    them, fails it in CI."""
    return shared_path('data', 'coco', 'test_coco.json')


@pytest.fixture(scope='session')
def converted_tiny(tmp_path_factory):
    """The official tiny fixture, converted for the tiny config (real
    weights, MMPose 1.x layout)."""
    from higherhrnet_plugin.checkpoint_conversion import (
        convert_checkpoint, save_converted_checkpoint)
    src = shared_path('fixtures', 'official_tiny_higherhrnet.pth')
    result = convert_checkpoint(src, config=str(TINY_CONFIG))
    return Path(save_converted_checkpoint(
        result, tmp_path_factory.mktemp('ckpt') / 'tiny_mmpose.pth'))
