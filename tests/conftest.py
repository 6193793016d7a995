"""Shared test helpers: locating ../shared and building models from configs."""
import os
from pathlib import Path

import pytest

import higherhrnet_plugin  # noqa: F401  (registers modules, applies shims)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared'
CONFIGS = REPO / 'configs' / 'higherhrnet'
TINY_CONFIG = CONFIGS / 'coco' / 'higherhrnet_hrnet-tiny_1xb2-30e_coco-256x256.py'

os.environ.setdefault('OMP_NUM_THREADS', '2')


def shared_path(*parts) -> Path:
    """A path under ../shared, skipping the test if it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f'{path} not found (CI places shared/ beside the repo)')
    return path


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
