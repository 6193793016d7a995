"""Shared test helpers: locating ../shared and building models from configs."""
import os
from pathlib import Path

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
