"""The environment fixes of higherhrnet_plugin._compat."""
import subprocess
import sys

import pytest

from higherhrnet_plugin import _compat


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300)


def test_mmpose_models_and_torchvision_import_after_the_plugin():
    result = run_python(
        'import higherhrnet_plugin, mmpose.models, torchvision, '
        'mmpose.visualization; print("ok")')
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == 'ok'


def test_a_compiled_mmcv_op_still_fails_clearly_with_mmcv_lite():
    from mmengine.utils.dl_utils import mmcv_full_available
    if mmcv_full_available():
        pytest.skip('full mmcv installed: no placeholder in use')
    from mmcv.ops.nms import ext_module
    with pytest.raises(RuntimeError, match='mmcv-lite'):
        ext_module.nms(None, None, iou_threshold=0.5)


def test_mmengine_loads_its_own_checkpoints(tmp_path):
    import numpy as np
    import torch
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import _load_checkpoint
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(meta=dict(sigmas=np.ones(3)),
                    message_hub=dict(buf=HistoryBuffer()),
                    state_dict=dict(w=torch.ones(2))), path)
    # plain torch refuses it (weights-only default) ...
    with pytest.raises(Exception):
        torch.load(path)
    # ... MMEngine's loader, as fixed, reads it
    loaded = _load_checkpoint(str(path), map_location='cpu')
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2))


def test_apply_is_idempotent_and_checks_before_fixing():
    import torchvision  # noqa: F401
    _compat.apply()
    _compat.apply()
    # torchvision is imported by now, so there is nothing left to fix there
    assert not _compat._torchvision_ops_missing()
