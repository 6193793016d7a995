"""The environment fixes of higherhrnet_plugin._compat: each one is applied
exactly where its probe finds the environment lacking."""
import subprocess
import sys

import pytest
import torch

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


def test_each_fix_is_applied_exactly_where_needed():
    from mmengine.utils.dl_utils import mmcv_full_available
    from torchvision.extension import _has_ops
    applied = _compat.applied()
    assert applied['mmcv'] is not mmcv_full_available()
    assert applied['torchvision'] is not _has_ops()
    assert applied['distributed'] is not torch.cuda.is_available()
    # MMEngine 0.10.7's loader either unpickles everything (torch < 2.6) or
    # cannot read its own checkpoints (torch >= 2.6): replaced on both
    assert applied['mmengine_loader'] is True
    assert applied['torch_allowlist'] is \
        _compat.torch_accepts_mmengine_allowlist()


def test_mmengine_loads_its_own_checkpoints(tmp_path):
    import numpy as np
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import _load_checkpoint
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(meta=dict(sigmas=np.ones(3)),
                    message_hub=dict(buf=HistoryBuffer()),
                    state_dict=dict(w=torch.ones(2))), path)
    loaded = _load_checkpoint(str(path), map_location='cpu')
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2))
    assert len(loaded['message_hub']['buf']._log_history) == 0


def test_the_canary_probe_tells_unsafe_loaders(monkeypatch):
    from mmengine.runner import checkpoint

    from higherhrnet_plugin.apis import load_checkpoint_file

    def unsafe(filename, map_location):
        return torch.load(filename, map_location=map_location,
                          weights_only=False)

    monkeypatch.setattr(checkpoint, 'load_from_local', unsafe)
    assert _compat._mmengine_loader_is_unsafe_or_fails()
    assert _compat._canary['fired']
    # a loader that is safe and reads MMEngine's checkpoints by itself
    # (torch needing no allowlist) is left alone
    monkeypatch.setattr(checkpoint, 'load_from_local', load_checkpoint_file)
    monkeypatch.setattr(_compat, '_probes', {})
    assert not _compat._mmengine_loader_is_unsafe_or_fails()
    assert not _compat._canary['fired']


def test_apply_is_idempotent():
    before = _compat.applied()
    _compat.apply()
    _compat.apply()
    assert _compat.applied() == before


def test_ddp_wrapper_accepts_cpu_modules_with_device_ids():
    """MMEngine passes device_ids=[LOCAL_RANK]; DDP rejects it for a CPU
    module unless fix 5 drops it (single process, gloo)."""
    if torch.cuda.is_available():
        pytest.skip('CUDA is usable: fix 5 not applied')
    import socket

    import torch.distributed as dist
    from mmengine.model.wrappers import MMDistributedDataParallel
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=0, world_size=1)
    try:
        wrapped = MMDistributedDataParallel(
            module=torch.nn.Linear(2, 2), device_ids=[0],
            broadcast_buffers=False)
        assert wrapped.device_ids is None
    finally:
        dist.destroy_process_group()
