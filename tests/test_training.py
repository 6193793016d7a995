"""End-to-end training of the plugin through MMPose's tools, on the 4 real
COCO images in ../shared/data/coco:

- ``mim train mmpose`` / ``mim test mmpose`` and MMPose's ``tools/train.py``
  (losses finite at every iteration, checkpoint written, CocoMetric runs);
- distributed training with ``torchrun`` (2 CPU processes, gloo): both ranks
  end with the same weights, which differ from the initial ones;
- our head on MMPose's own Associative Embedding config, and our tiny config
  with another MMPose backbone: one training step each;
- resuming an interrupted run with ``--resume``.

The subprocess tests (marked ``slow``) take a few minutes together on 2 CPU
cores. Their work dirs are under ``tmp_path``; a failing subprocess shows the
tail of its output.
"""
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from higherhrnet_plugin.testing import shared_path

REPO = Path(__file__).resolve().parents[1]
TESTS_DIR = Path(__file__).resolve().parent
TINY_CONFIG = (REPO / 'configs' / 'higherhrnet' / 'coco' /
               'higherhrnet_hrnet-tiny_1xb2-30e_coco-256x256.py')
LOSS_KEYS = ('loss_heatmap_0', 'loss_heatmap_1', 'loss_pull_0', 'loss_push_0')
BIN = Path(sys.executable).parent
TIMEOUT = 600  # seconds per subprocess; each normally takes 10-30 s
TAIL_LINES = 60


def _mmpose_dir() -> Path:
    import mmpose
    return Path(mmpose.__file__).resolve().parent


def _mmpose_train_py() -> Path:
    return _mmpose_dir() / '.mim' / 'tools' / 'train.py'


def _ae_config() -> Path:
    return (_mmpose_dir() / '.mim' / 'configs' / 'body_2d_keypoint' /
            'associative_embedding' / 'coco' /
            'ae_hrnet-w32_8xb24-300e_coco-512x512.py')


# ---------------------------------------------------------------- helpers


@pytest.fixture
def data_root() -> Path:
    return shared_path('data', 'coco', 'test_coco.json').parent


def _data_options(root: Path) -> list:
    """--cfg-options pointing every dataset and evaluator at ``root``."""
    prefix = str(root) + '/'
    ann = str(root / 'test_coco.json')
    return [
        f'train_dataloader.dataset.data_root={prefix}',
        f'val_dataloader.dataset.data_root={prefix}',
        f'test_dataloader.dataset.data_root={prefix}',
        f'val_evaluator.ann_file={ann}',
        f'test_evaluator.ann_file={ann}',
    ]


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return '\n'.join(text.splitlines()[-lines:])


def _run(cmd, log_file: Path, env: dict = None, timeout: int = TIMEOUT) -> str:
    """Run ``cmd`` from the repo root; return its stdout+stderr.

    The output is also written to ``log_file``. On a non-zero exit status or
    a timeout (the whole process group is killed) the test fails with the
    tail of the output.
    """
    cmd = [str(c) for c in cmd]
    full_env = os.environ.copy()
    # tests/ for the probe hook module; the repo for the plugin if it is
    # not installed.
    paths = [str(TESTS_DIR), str(REPO)]
    if full_env.get('PYTHONPATH'):
        paths.append(full_env['PYTHONPATH'])
    full_env['PYTHONPATH'] = os.pathsep.join(paths)
    full_env.setdefault('OMP_NUM_THREADS', '2')
    full_env.update(env or {})
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        log_file.write_text(out)
        print(_tail(out))
        pytest.fail(f'timed out after {timeout} s: {" ".join(cmd)}\n'
                    f'--- last lines of output ---\n{_tail(out)}')
    log_file.write_text(out)
    if proc.returncode != 0:
        print(_tail(out))
        pytest.fail(f'exit status {proc.returncode}: {" ".join(cmd)}\n'
                    f'--- last lines of output ---\n{_tail(out)}')
    return out


def _scalars(run_dir: Path) -> list:
    """Entries of ``<run_dir>/vis_data/scalars.json``."""
    path = run_dir / 'vis_data' / 'scalars.json'
    assert path.is_file(), f'no {path}'
    return [json.loads(line) for line in path.read_text().splitlines()
            if line.strip()]


def _run_dirs(work_dir: Path) -> set:
    """The timestamped log folders MMEngine made in ``work_dir``."""
    return {p.parent.parent for p in work_dir.glob('*/vis_data/scalars.json')}


def _check_train_log(entries: list, expected_iters: list, output: str):
    """Every expected iteration is logged once with all losses finite."""
    train = [e for e in entries if 'loss' in e and 'iter' in e]
    iters = [e['iter'] for e in train]
    assert iters == expected_iters, (
        f'logged train iterations {iters}, expected {expected_iters}\n'
        f'{_tail(output)}')
    for entry in train:
        for key in ('loss', *LOSS_KEYS):
            assert key in entry, f'{key} missing at iter {entry["iter"]}'
            assert math.isfinite(entry[key]), (
                f'{key} = {entry[key]} at iter {entry["iter"]}')
    return train


def _load(path: Path) -> dict:
    """Read a checkpoint (or probe file) weights-only: MMEngine's real
    checkpoints must load that way."""
    from higherhrnet_plugin.apis import load_checkpoint_file
    return load_checkpoint_file(path, map_location='cpu')


def _assert_same(a, b, where: str = ''):
    """Recursively compare (nested) state dicts: tensors exactly."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor), \
            f'{where}: {type(a).__name__} vs {type(b).__name__}'
        assert a.shape == b.shape, f'{where}: shape {a.shape} vs {b.shape}'
        assert torch.equal(a.cpu(), b.cpu()), (
            f'{where}: values differ (max abs diff '
            f'{(a.double() - b.double()).abs().max().item():.3g})')
    elif isinstance(a, dict):
        assert isinstance(b, dict), f'{where}: dict vs {type(b).__name__}'
        assert set(a) == set(b), (
            f'{where}: keys differ: {sorted(map(str, set(a) ^ set(b)))[:10]}')
        for key in a:
            _assert_same(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), \
            f'{where}: {a!r:.80} vs {b!r:.80}'
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b, f'{where}: {a!r} vs {b!r}'


def _probe_config(tmp_path: Path, probe_dir: Path) -> Path:
    """The tiny config plus the test-only TrainingProbeHook."""
    path = tmp_path / 'probe_config.py'
    path.write_text(
        f'_base_ = [{str(TINY_CONFIG)!r}]\n'
        "custom_imports = dict(\n"
        "    imports=['higherhrnet_plugin', 'training_probe'],\n"
        "    allow_failed_imports=False)\n"
        f"custom_hooks = [dict(type='TrainingProbeHook', "
        f"out_dir={str(probe_dir)!r})]\n")
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# ------------------------------------------------- a. mim / tools/train.py


def _train_two_epochs(train_cmd: list, tmp_path: Path, root: Path) -> Path:
    """Train the tiny config 2 epochs (4 iterations of batch 2); check the
    log and the checkpoint; return the checkpoint."""
    work_dir = tmp_path / 'work'
    out = _run(
        [*train_cmd, TINY_CONFIG, '--work-dir', work_dir, '--cfg-options',
         *_data_options(root), 'train_cfg.max_epochs=2',
         'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=1'],
        tmp_path / 'train.log')

    run_dirs = _run_dirs(work_dir)
    assert len(run_dirs) == 1, f'log folders: {run_dirs}\n{_tail(out)}'
    run_dir = run_dirs.pop()
    entries = _scalars(run_dir)
    _check_train_log(entries, [1, 2, 3, 4], out)
    # the text log has the same losses
    text_log = (run_dir / f'{run_dir.name}.log').read_text()
    for key in LOSS_KEYS:
        assert len(re.findall(rf'{key}: \S+', text_log)) == 4, key
    # CocoMetric ran at the end of training
    assert any('coco/AP' in e for e in entries), _tail(out)

    ckpt = work_dir / 'epoch_2.pth'
    assert ckpt.is_file(), f'no checkpoint; work dir has ' \
        f'{sorted(p.name for p in work_dir.iterdir())}'
    assert (work_dir / 'last_checkpoint').read_text().strip() == str(ckpt)
    meta = _load(ckpt)['meta']
    assert (meta['epoch'], meta['iter']) == (2, 4)
    return ckpt


@pytest.mark.slow
def test_mim_train_then_mim_test(tmp_path, data_root):
    mim = BIN / 'mim'
    assert mim.is_file(), f'no mim next to {sys.executable}'
    ckpt = _train_two_epochs([mim, 'train', 'mmpose'], tmp_path, data_root)

    out = _run([
        mim, 'test', 'mmpose', TINY_CONFIG, '--checkpoint', ckpt,
        '--work-dir', tmp_path / 'test', '--cfg-options',
        *_data_options(data_root)
    ], tmp_path / 'test.log')
    assert f'Load checkpoint from {ckpt}' in out, _tail(out)
    assert 'do not match exactly' not in out, _tail(out)  # missing keys
    match = re.search(r'coco/AP: (\d+\.\d+)', out)
    assert match, f'no "coco/AP: <value>" in the mim test output\n{_tail(out)}'
    assert 0.0 <= float(match.group(1)) <= 1.0


@pytest.mark.slow
def test_mmpose_tools_train(tmp_path, data_root):
    train_py = _mmpose_train_py()
    assert train_py.is_file(), f'{train_py} not found'
    _train_two_epochs([sys.executable, train_py], tmp_path, data_root)


# ------------------------------------------------------ b. distributed


@pytest.mark.slow
def test_torchrun_two_processes_agree(tmp_path, data_root):
    """2 processes x batch 2 = the 4 images in 1 iteration per epoch; 2
    epochs = 2 iterations. Gradients are averaged, so both ranks must end
    with identical parameters (and optimizer state)."""
    torchrun = BIN / 'torchrun'
    assert torchrun.is_file(), f'no torchrun next to {sys.executable}'
    probe_dir = tmp_path / 'probe'
    config = _probe_config(tmp_path, probe_dir)
    work_dir = tmp_path / 'work'
    port = _free_port()
    out = _run(
        [
            torchrun, '--nnodes', '1', '--nproc_per_node', '2',
            '--master_addr', '127.0.0.1', '--master_port', port,
            _mmpose_train_py(), config, '--launcher', 'pytorch',
            # no backend / model wrapper options: the plugin makes MMEngine's
            # launcher and DDP wrapper work without CUDA
            '--work-dir', work_dir, '--cfg-options', *_data_options(data_root),
            'train_cfg.max_epochs=2', 'train_cfg.val_interval=2'
        ],
        tmp_path / 'torchrun.log',
        env=dict(
            OMP_NUM_THREADS='1',
            MASTER_ADDR='127.0.0.1',
            MASTER_PORT=str(port)))

    entries = _scalars(_run_dirs(work_dir).pop())
    _check_train_log(entries, [1, 2], out)
    assert any('coco/AP' in e for e in entries), _tail(out)

    start = [_load(probe_dir / f'before_train_rank{r}.pth') for r in (0, 1)]
    end = [_load(probe_dir / f'after_train_rank{r}.pth') for r in (0, 1)]
    for state in start + end:
        assert state['world_size'] == 2
    assert [s['iter'] for s in end] == [2, 2]
    names = end[0]['param_names']
    assert names == end[1]['param_names'] and len(names) > 0

    # both ranks end with the same parameters and optimizer state ...
    for name in names:
        _assert_same(end[0]['state_dict'][name], end[1]['state_dict'][name],
                     f'rank 0 vs rank 1: {name}')
    _assert_same(end[0]['optimizer'], end[1]['optimizer'],
                 'rank 0 vs rank 1: optimizer')
    # ... which training changed (so the comparison above can fail)
    changed = [
        name for name in names if not torch.equal(
            start[0]['state_dict'][name], end[0]['state_dict'][name])
    ]
    assert len(changed) == len(names), (
        f'{len(names) - len(changed)} of {len(names)} parameters did not '
        f'change, e.g. {sorted(set(names) - set(changed))[:5]}')


# -------------------------------------------- c. head / backbone swaps


def _one_training_step(config: Path, root: Path):
    """Build the model and the train dataset of ``config`` in-process and
    run ``model.train_step`` on a batch of 2 real images."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope

    from mmpose.registry import DATASETS, MODELS

    cfg = Config.fromfile(str(config))  # imports the plugin (custom_imports)
    init_default_scope('mmpose')
    cfg.train_dataloader.dataset.data_root = str(root) + '/'
    cfg.train_dataloader.dataset.ann_file = 'test_coco.json'
    cfg.train_dataloader.dataset.data_prefix = dict(img='')

    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[0], dataset[1]])

    # one optimisation step: every parameter gets a finite gradient, every
    # head parameter and (some of) the backbone move. (A gradient can be
    # exactly 0 in the first step, e.g. inside ResNet blocks whose last BN
    # starts at 0 (zero_init_residual); Adam leaves those parameters as
    # they are, so the check is: moved <=> non-zero gradient.)
    params = dict(model.named_parameters())
    before = {n: p.detach().clone() for n, p in params.items()}
    finite, nonzero = {}, {}

    def record(grad, name):
        finite[name] = finite.get(name, True) and bool(
            torch.isfinite(grad).all())
        nonzero[name] = nonzero.get(name, False) or bool(grad.any())

    for name, param in params.items():
        param.register_hook(lambda g, n=name: record(g, n))
    optim_wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
    log_vars = model.train_step(batch, optim_wrapper)  # the loss dict
    assert {'loss', *LOSS_KEYS} <= set(log_vars), sorted(log_vars)
    for key, value in log_vars.items():
        assert math.isfinite(value.item()), f'{key} = {value}'
    missing = sorted(set(params) - set(finite))
    assert not missing, f'no gradient for {missing[:5]}'
    assert all(finite.values()), [n for n, ok in finite.items() if not ok]
    moved = {n for n, p in params.items() if not torch.equal(before[n], p)}
    assert moved == {n for n, nz in nonzero.items() if nz}
    head = {n for n in params if n.startswith('head.')}
    assert head and head <= moved, sorted(head - moved)[:5]
    assert any(n.startswith('backbone.') for n in moved)
    return model, log_vars


@pytest.mark.slow
def test_our_head_on_mmpose_ae_config(tmp_path, data_root):
    """MMPose's Associative Embedding HRNet-W32 config with its head replaced
    by HigherHRNetHead (input reduced to 256, no pretrained download)."""
    ae_config = _ae_config()
    assert ae_config.is_file(), f'{ae_config} not found'
    config = tmp_path / 'ae_with_higherhrnet_head.py'
    config.write_text(f"""
_base_ = [{str(ae_config)!r}]
custom_imports = dict(imports=['higherhrnet_plugin'],
                      allow_failed_imports=False)
input_size = (256, 256)
codec = dict(
    type='MultiResolutionAssociativeEmbedding',
    input_size=input_size,
    heatmap_sizes=[(64, 64), (128, 128)],
    sigma=2,
    tag_level=0,
    decode_keypoint_order=[
        0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16])
model = dict(
    backbone=dict(init_cfg=None),
    head=dict(
        _delete_=True,
        type='HigherHRNetHead',
        in_channels=32,
        num_keypoints=17,
        tag_dim=1,
        tag_per_keypoint=True,
        with_ae=[True, False],
        deconv_out_channels=(32, ),
        num_basic_blocks=4,
        cat_output=[True],
        loss=dict(
            type='HigherHRNetLoss',
            heatmap_loss=dict(type='KeypointMSELoss'),
            heatmap_weights=[1.0, 1.0],
            tag_loss=dict(type='PullPushTagLoss', push_type='exp',
                          pull_weight=1e-3, push_weight=1e-3)),
        decoder=codec),
    test_cfg=dict(_delete_=True, flip_test=True, multiscale_test=False,
                  align_corners=False))
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='BottomupRandomAffine', input_size=input_size),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
""")
    model, _ = _one_training_step(config, data_root)
    assert type(model.head).__name__ == 'HigherHRNetHead'
    assert type(model.backbone).__name__ == 'HRNet'
    # it is the full W32 backbone of the MMPose config
    assert model.backbone.stage4[-1].branches[0][-1].conv1.in_channels == 32


# ResNet-18 for the HRNet of the tiny config, two ways:
# - 'stride4': only the stem and layer1 (num_stages=1, stride 1) -> a 1/4
#   resolution, 64-channel feature, exactly what HRNet gives; the codec
#   (64x64 and 128x128 heatmaps at a 256 input) stays as it is. This is the
#   simplest swap.
# - 'stride32': the usual 4-stage ResNet-18, out_indices=(3,) -> 1/32, 512
#   channels; the heatmaps become 8x8 and 16x16, set in the codec of both the
#   target generator and the head.
BACKBONE_SWAPS = {
    'resnet18_stride4':
    """
model = dict(
    backbone=dict(_delete_=True, type='ResNet', depth=18, num_stages=1,
                  strides=(1, ), dilations=(1, ), out_indices=(0, )),
    head=dict(in_channels=64))
""",
    'resnet18_stride32':
    """
codec = dict(_base_.codec, heatmap_sizes=[(8, 8), (16, 16)])
model = dict(
    backbone=dict(_delete_=True, type='ResNet', depth=18, out_indices=(3, )),
    head=dict(in_channels=512, decoder=codec))
train_pipeline = [
    _base_.train_pipeline[0],
    _base_.train_pipeline[1],
    _base_.train_pipeline[2],
    dict(type='GenerateTarget', encoder=codec),
    _base_.train_pipeline[4],
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
""",
}


@pytest.mark.slow
@pytest.mark.parametrize('swap', sorted(BACKBONE_SWAPS))
def test_tiny_config_with_resnet_backbone(tmp_path, data_root, swap):
    config = tmp_path / f'tiny_{swap}.py'
    config.write_text(f'_base_ = [{str(TINY_CONFIG)!r}]\n' +
                      BACKBONE_SWAPS[swap])
    model, _ = _one_training_step(config, data_root)
    assert type(model.backbone).__name__ == 'ResNet'
    assert type(model.head).__name__ == 'HigherHRNetHead'
    stride = 4 if swap.endswith('stride4') else 32
    codec = model.head.decoder
    assert codec.heatmap_sizes == [(256 // stride, 256 // stride),
                                   (512 // stride, 512 // stride)]


# ------------------------------------------------------------ d. resume


@pytest.mark.slow
def test_resume_after_interruption(tmp_path, data_root):
    """Run 1 stops after epoch 1 (as if killed); run 2, ``--resume`` with
    max_epochs=3, must continue from epoch 1 / iteration 2 with exactly the
    checkpoint's weights, optimizer and LR-scheduler state."""
    train_py = _mmpose_train_py()
    work_dir = tmp_path / 'work'
    common = [
        '--work-dir', work_dir, '--cfg-options', *_data_options(data_root),
        'default_hooks.checkpoint.interval=1',
        'train_cfg.val_begin=100'  # no evaluation: not what is tested here
    ]
    out1 = _run([sys.executable, train_py, TINY_CONFIG, *common,
                 'train_cfg.max_epochs=1'], tmp_path / 'run1.log')
    ckpt_path = work_dir / 'epoch_1.pth'
    assert ckpt_path.is_file(), _tail(out1)
    ckpt = _load(ckpt_path)
    assert (ckpt['meta']['epoch'], ckpt['meta']['iter']) == (1, 2)
    first_dirs = _run_dirs(work_dir)

    probe_dir = tmp_path / 'probe'
    config = _probe_config(tmp_path, probe_dir)
    out2 = _run([sys.executable, train_py, config, '--resume', *common,
                 'train_cfg.max_epochs=3'], tmp_path / 'run2.log')
    assert 'resumed epoch: 1, iter: 2' in out2, _tail(out2)

    # what the runner held right after resuming equals the checkpoint
    start = _load(probe_dir / 'before_train_rank0.pth')
    assert (start['epoch'], start['iter']) == (1, 2)
    _assert_same(start['state_dict'], ckpt['state_dict'], 'model')
    _assert_same(start['optimizer'], ckpt['optimizer'], 'optimizer')
    _assert_same(start['param_schedulers'], ckpt['param_schedulers'],
                 'param_schedulers')
    assert ckpt['optimizer']['state'], 'the checkpoint has no Adam state'

    # run 2 trained only epochs 2 and 3: iterations 3..6
    (run2_dir, ) = _run_dirs(work_dir) - first_dirs
    train = _check_train_log(_scalars(run2_dir), [3, 4, 5, 6], out2)
    assert [e['epoch'] for e in train] == [2, 2, 3, 3]
    final = _load(work_dir / 'epoch_3.pth')['meta']
    assert (final['epoch'], final['iter']) == (3, 1 * 2 + 2 * 2)
    # the warm-up LR schedule continued: lr after iteration 3 follows lr
    # after iteration 2 (LinearLR, by iteration, over the first 10)
    lr_run1 = [e['lr'] for e in _scalars(first_dirs.pop()) if 'loss' in e]
    lr_run2 = [e['lr'] for e in train]
    step = lr_run1[1] - lr_run1[0]
    assert lr_run2[0] == pytest.approx(lr_run1[1] + step, rel=1e-6), (
        lr_run1, lr_run2)
