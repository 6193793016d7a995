"""Weights-only checkpoint loading: a checkpoint whose unpickling would
create a file is refused by every entry point, naming the file and the
refused object, while MMEngine's own checkpoints (numpy arrays, dataset
metainfo, ``HistoryBuffer``s, optimizer and scheduler state) still load."""
import collections
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from higherhrnet_plugin.apis import (CheckpointError, RefusedCheckpointError,
                                     load_checkpoint_file)
from higherhrnet_plugin.testing import shared_path

from .conftest import REPO, TINY_CONFIG, build_model


class _CreatesFile:
    """Unpickling this opens (creates) ``path`` for writing."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, 'w')


class _RunsShell:

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.system, (f'touch {self.path}', )


def _malicious(tmp_path: Path, payload=_CreatesFile, legacy=False):
    """A checkpoint of the tiny model with a payload in its meta, and the
    file the payload would create."""
    marker = tmp_path / f'created_by_{payload.__name__}'
    ckpt = tmp_path / f'malicious{"_legacy" if legacy else ""}.pth'
    torch.save({'state_dict': build_model(TINY_CONFIG).state_dict(),
                'meta': {'note': payload(marker)}}, ckpt,
               _use_new_zipfile_serialization=not legacy)
    return ckpt, marker


def _assert_refused(message: str, ckpt: Path, marker: Path):
    assert not marker.exists(), f'the payload ran: {marker} exists'
    lines = [line for line in message.splitlines()
             if 'refused to unpickle' in line]
    assert lines, message[-2000:]
    assert str(ckpt) in lines[0], lines[0]


@pytest.mark.parametrize('payload', [_CreatesFile, _RunsShell])
@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])
def test_load_checkpoint_file_refuses_code(tmp_path, payload, legacy):
    ckpt, marker = _malicious(tmp_path, payload, legacy)
    with pytest.raises(RefusedCheckpointError) as err:
        load_checkpoint_file(ckpt)
    _assert_refused(str(err.value), ckpt, marker)
    refused = 'open' if payload is _CreatesFile else 'system'
    assert refused in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_in_process_entry_points_refuse_code(tmp_path):
    """MMEngine's loader (resume, mim test, load_from), MMPose's init_model,
    the plugin's init_model and the converter."""
    from mmengine.runner import load_checkpoint
    from mmpose.apis import init_model as mmpose_init_model

    from higherhrnet_plugin.apis import init_model
    from higherhrnet_plugin.checkpoint_conversion import convert_checkpoint
    ckpt, marker = _malicious(tmp_path)
    entry_points = {
        'mmengine.load_checkpoint': lambda: load_checkpoint(
            build_model(TINY_CONFIG), str(ckpt), map_location='cpu'),
        'mmpose.apis.init_model': lambda: mmpose_init_model(
            str(TINY_CONFIG), str(ckpt), device='cpu'),
        'higherhrnet_plugin.apis.init_model': lambda: init_model(
            str(TINY_CONFIG), str(ckpt)),
        'convert_checkpoint': lambda: convert_checkpoint(ckpt),
    }
    for name, call in entry_points.items():
        with pytest.raises(CheckpointError) as err:
            call()
        _assert_refused(str(err.value), ckpt, marker)


def test_plain_torch_load_stays_weights_only(tmp_path):
    """After the plugin's import, torch.load reads MMEngine's checkpoint
    types where torch loads weights-only by default (>= 2.6) and still
    refuses code. (torch 2.1's torch.load unpickles everything by default;
    the plugin does not change torch.load: docs/install.md.)"""
    probe = tmp_path / 'probe.pth'
    torch.save({'queue': collections.deque()}, probe)
    try:
        torch.load(probe)
        pytest.skip('this torch.load unpickles everything by default')
    except pickle.UnpicklingError:
        pass
    from mmengine.logging import HistoryBuffer
    good = tmp_path / 'good.pth'
    torch.save({'meta': {'sigmas': np.ones(3, np.float32)},
                'message_hub': {'loss': HistoryBuffer([0.5], [1])}}, good)
    loaded = torch.load(good)
    assert loaded['message_hub']['loss'].mean() == 0.5
    ckpt, marker = _malicious(tmp_path)
    with pytest.raises(Exception):
        torch.load(ckpt)
    assert not marker.exists()


@pytest.mark.parametrize('content', [
    {'arr': np.array(['a', 'b'], dtype=object)},
    {'rec': np.zeros(2, dtype=[('x', 'f4')])},
], ids=['object-array', 'structured-array'])
def test_only_numeric_numpy_arrays(tmp_path, content):
    ckpt = tmp_path / 'numpy.pth'
    torch.save(content, ckpt)
    with pytest.raises(RefusedCheckpointError, match='numpy.dtype'):
        load_checkpoint_file(ckpt)


def test_getattr_only_reaches_history_buffer_methods(tmp_path):
    """HistoryBuffer pickles its statistics methods as getattr(class, name);
    the allowlisted getattr serves those and nothing else."""
    from mmengine.logging import HistoryBuffer

    class _Reach:

        def __reduce__(self):
            return getattr, (HistoryBuffer, '__init__')

    ckpt = tmp_path / 'getattr.pth'
    torch.save({'x': _Reach()}, ckpt)
    with pytest.raises(RefusedCheckpointError, match='getattr'):
        load_checkpoint_file(ckpt)
    ok = tmp_path / 'buffer.pth'
    torch.save({'b': HistoryBuffer([1.0, 3.0], [1, 1])}, ok)
    assert load_checkpoint_file(ok)['b'].mean() == 2.0


@pytest.mark.parametrize('kind', ['truncated', 'empty', 'text'])
def test_damaged_files_are_named(tmp_path, kind):
    ckpt = tmp_path / f'{kind}.pth'
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(1000)}}, good)
    data = {'truncated': good.read_bytes()[:500], 'empty': b'',
            'text': b'not a checkpoint'}[kind]
    ckpt.write_bytes(data)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint_file(ckpt)
    message = str(err.value)
    assert message.startswith(str(ckpt)) and len(message.splitlines()) == 1
    assert {'truncated': 'truncated or corrupt', 'empty': 'empty',
            'text': 'not a PyTorch checkpoint'}[kind] in message


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='no such file'):
        load_checkpoint_file(tmp_path / 'nope.pth')


# ------------------------------------------------------- subprocess paths


def _data_options(root: Path) -> list:
    prefix = str(root) + '/'
    return [f'test_dataloader.dataset.data_root={prefix}',
            f'test_evaluator.ann_file={root / "test_coco.json"}',
            f'val_dataloader.dataset.data_root={prefix}',
            f'val_evaluator.ann_file={root / "test_coco.json"}',
            f'train_dataloader.dataset.data_root={prefix}']


def _run(cmd, cwd):
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(
                   [str(REPO), os.environ.get('PYTHONPATH', '')]))
    return subprocess.run([str(c) for c in cmd], capture_output=True,
                          text=True, timeout=600, cwd=cwd, env=env)


@pytest.mark.slow
def test_mim_test_and_resume_refuse_code(tmp_path):
    root = shared_path('data', 'coco', 'test_coco.json').parent
    ckpt, marker = _malicious(tmp_path)
    mim = Path(sys.executable).parent / 'mim'
    import mmpose
    train_py = Path(mmpose.__file__).parent / '.mim' / 'tools' / 'train.py'
    commands = {
        'mim test': [mim, 'test', 'mmpose', TINY_CONFIG, '--checkpoint',
                     ckpt, '--work-dir', tmp_path / 'test', '--cfg-options',
                     *_data_options(root)],
        'train.py --resume': [sys.executable, train_py, TINY_CONFIG,
                              '--resume', ckpt, '--work-dir',
                              tmp_path / 'train', '--cfg-options',
                              *_data_options(root)],
    }
    for name, cmd in commands.items():
        proc = _run(cmd, REPO)
        assert proc.returncode != 0, f'{name} accepted the checkpoint'
        _assert_refused(proc.stdout + proc.stderr, ckpt, marker)
