"""MMPose's own scripts (shipped in the mmpose package under ``.mim/``) on
the tiny config, with the plugin's startup hook and nothing else: the
bottom-up demo (image and video, predictions, heatmaps), the inferencer
demo, get_flops, analyze_logs on our training log, browse_dataset on our
train pipeline and publish_model on one of our training checkpoints.

Also the hook itself: it is in the wheels ``pip install`` builds (regular
and editable), it imports nothing heavy, and it changes nothing where the
environment lacks nothing.

In CI the hook must be installed in this interpreter (``tools/install.sh``
installs the package); elsewhere (a shared development venv with another
checkout installed) the tests put this repository's ``.pth`` on a temporary
site directory.
"""
import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from higherhrnet_plugin.testing import shared_path

from .conftest import REPO, TINY_CONFIG

STARTUP_PTH = 'higherhrnet_plugin_startup.pth'
IMAGE = ('data', 'coco', '000000000785.jpg')
TIMEOUT = 600


def _mim_dir() -> Path:
    import mmpose
    return Path(mmpose.__file__).resolve().parent / '.mim'


def _installed_hook() -> bool:
    """The hook's .pth in a site directory of this interpreter, next to this
    repository's hook module."""
    spec = importlib.util.find_spec('higherhrnet_plugin_startup')
    dirs = site.getsitepackages() + [site.getusersitepackages()]
    return (spec is not None
            and Path(spec.origin).resolve().parent == REPO
            and any((Path(d) / STARTUP_PTH).is_file() for d in dirs))


@pytest.fixture(scope='module')
def python(tmp_path_factory):
    """The command that starts Python with the startup hook."""
    if _installed_hook():
        return [sys.executable]
    if os.environ.get('CI') == 'true':
        pytest.fail(f'{STARTUP_PTH} is not installed for {sys.executable} '
                    '(tools/install.sh installs it with the package)')
    folder = tmp_path_factory.mktemp('site')
    shutil.copy(REPO / STARTUP_PTH, folder / STARTUP_PTH)
    launcher = folder / 'run_with_site.py'
    launcher.write_text(
        'import runpy, site, sys\n'
        f'site.addsitedir({str(folder)!r})\n'
        'sys.argv = sys.argv[1:]\n'
        'if sys.argv[0] == "-c":\n'
        '    exec(sys.argv[1])\n'
        'else:\n'
        '    runpy.run_path(sys.argv[0], run_name="__main__")\n')
    return [sys.executable, str(launcher)]


def _run(python, *args, cwd=REPO, check=True):
    env = dict(os.environ, OMP_NUM_THREADS='1', MPLBACKEND='Agg')
    # this repository first (its hook and plugin), as when installed
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (str(REPO), env.get('PYTHONPATH')) if p)
    proc = subprocess.run([*python, *map(str, args)], capture_output=True,
                          text=True, timeout=TIMEOUT, cwd=cwd, env=env)
    if check:
        assert proc.returncode == 0, (
            f'{" ".join(map(str, args))}\n{proc.stdout[-3000:]}\n'
            f'{proc.stderr[-3000:]}')
    return proc


@pytest.fixture(scope='module')
def checkpoint(converted_tiny):
    return converted_tiny


@pytest.fixture(scope='module')
def training_run(python, tmp_path_factory, shared_coco):
    """One epoch of MMPose's tools/train.py on the tiny config: the work dir
    (checkpoint epoch_1.pth, vis_data/scalars.json)."""
    work_dir = tmp_path_factory.mktemp('train')
    _run(python, _mim_dir() / 'tools' / 'train.py', TINY_CONFIG,
         '--work-dir', work_dir, '--cfg-options', 'train_cfg.max_epochs=1',
         'train_cfg.val_begin=100', 'default_hooks.checkpoint.interval=1')
    return work_dir


# ------------------------------------------------------------- the hook


def test_the_wheels_install_the_hook(tmp_path):
    """The regular and the editable (PEP 660) wheel both carry the .pth at
    their top, which pip puts into site-packages."""
    from setuptools import build_meta
    source = tmp_path / 'src'
    shutil.copytree(REPO / 'higherhrnet_plugin', source / 'higherhrnet_plugin',
                    ignore=shutil.ignore_patterns('__pycache__'))
    for name in ('pyproject.toml', 'setup.py', 'MANIFEST.in', 'README.md',
                 STARTUP_PTH, 'higherhrnet_plugin_startup.py'):
        shutil.copy(REPO / name, source / name)
    dist = tmp_path / 'dist'
    dist.mkdir()
    cwd = os.getcwd()
    os.chdir(source)
    try:
        wheels = {'regular': build_meta.build_wheel(str(dist)),
                  'editable': build_meta.build_editable(str(dist))}
    finally:
        os.chdir(cwd)
    for kind, name in wheels.items():
        names = zipfile.ZipFile(dist / name).namelist()
        assert STARTUP_PTH in names, (kind, names[:20])
    regular = zipfile.ZipFile(dist / wheels['regular'])
    assert 'higherhrnet_plugin_startup.py' in regular.namelist()
    assert regular.read(STARTUP_PTH) == (REPO / STARTUP_PTH).read_bytes()


def test_the_hook_imports_nothing_heavy(python):
    proc = _run(python, '-c',
                'import sys\n'
                'heavy = {"torch", "numpy", "mmcv", "mmengine", "mmpose",\n'
                '         "torchvision", "higherhrnet_plugin"}\n'
                'print(sorted(m for m in sys.modules\n'
                '             if m.split(".")[0] in heavy))\n'
                'print("higherhrnet_plugin_startup" in sys.modules)')
    assert proc.stdout.split() == ['[]', 'True'], proc.stdout


def test_the_hook_fixes_only_what_is_lacking(python):
    """MMPose imported without the plugin: the fixes the hook applied match
    what the environment lacks (on the full-mmcv stack: none)."""
    proc = _run(python, '-c',
                'import sys, json, mmpose.apis, torchvision\n'
                'from torchvision.extension import _has_ops\n'
                'from mmengine.utils.dl_utils import mmcv_full_available\n'
                'compat = sys.modules["higherhrnet_plugin._compat"]\n'
                'print(json.dumps(dict(applied=compat.applied(),\n'
                '    plugin="higherhrnet_plugin" in sys.modules,\n'
                '    full=mmcv_full_available(), ops=_has_ops())))')
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    applied = report['applied']
    assert not report['plugin']
    assert applied['mmcv'] is not report['full']
    assert applied['torchvision'] is not report['ops']
    assert 'mmengine_loader' not in applied  # the plugin's business


# ------------------------------------------------------ MMPose's scripts


def _video(path: Path, frames: int = 3) -> Path:
    import cv2
    image = cv2.imread(str(shared_path(*IMAGE)))
    image = cv2.resize(image, (320, 240))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 5,
                             (320, 240))
    for i in range(frames):
        writer.write(cv2.flip(image, 1) if i % 2 else image)
    writer.release()
    return path


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['image', 'video'])
def test_bottomup_demo(python, checkpoint, tmp_path, kind):
    import cv2
    source = shared_path(*IMAGE) if kind == 'image' else _video(
        tmp_path / 'clip.mp4')
    out = tmp_path / 'out'
    _run(python, _mim_dir() / 'demo' / 'bottomup_demo.py', TINY_CONFIG,
         checkpoint, '--input', source, '--output-root', out, '--device',
         'cpu', '--save-predictions', '--draw-heatmap')
    drawn = out / source.name
    assert drawn.is_file()
    predictions = json.loads(
        (out / f'results_{source.stem}.json').read_text())
    assert predictions['meta_info']['num_keypoints'] == 17
    if kind == 'image':
        image = cv2.imread(str(drawn))
        height, width = cv2.imread(str(source)).shape[:2]
        assert image.shape[1] == width and image.shape[0] >= height
        assert predictions['instance_info'], 'no people in the predictions'
        person = predictions['instance_info'][0]
        assert len(person['keypoints']) == 17
    else:
        capture = cv2.VideoCapture(str(drawn))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
        capture.release()
        assert [f['frame_id'] for f in predictions['instance_info']] == \
            [1, 2, 3]  # MMPose counts frames from 1


@pytest.mark.slow
def test_inferencer_demo(python, checkpoint, tmp_path):
    image = shared_path(*IMAGE)
    _run(python, _mim_dir() / 'demo' / 'inferencer_demo.py', image,
         '--pose2d', TINY_CONFIG, '--pose2d-weights', checkpoint, '--device',
         'cpu', '--vis-out-dir', tmp_path / 'vis', '--pred-out-dir',
         tmp_path / 'pred')
    assert (tmp_path / 'vis' / image.name).is_file()
    people = json.loads((tmp_path / 'pred' / f'{image.stem}.json')
                        .read_text())
    assert people and len(people[0]['keypoints']) == 17


@pytest.mark.slow
def test_get_flops(python):
    proc = _run(python, _mim_dir() / 'tools' / 'analysis_tools' /
                'get_flops.py', TINY_CONFIG, '--input-shape', 512, 512)
    assert 'Flops' in proc.stdout and 'head.final_layers' in proc.stdout, \
        proc.stdout[-2000:]


@pytest.mark.slow
def test_analyze_logs_plots_our_losses(python, training_run, tmp_path):
    pytest.importorskip('seaborn')
    log = next(training_run.glob('*/vis_data/scalars.json'))
    out = tmp_path / 'curves.png'
    _run(python, _mim_dir() / 'tools' / 'analysis_tools' / 'analyze_logs.py',
         'plot_curve', log, '--keys', 'loss_heatmap_0', 'loss_heatmap_1',
         'loss_pull_0', 'loss_push_0', '--out', out)
    assert out.is_file() and out.stat().st_size > 0


@pytest.mark.slow
def test_browse_dataset_draws_every_resolution(python, tmp_path, shared_coco):
    import cv2
    out = tmp_path / 'browse'
    _run(python, _mim_dir() / 'tools' / 'misc' / 'browse_dataset.py',
         TINY_CONFIG, '--output-dir', out, '--not-show', '--phase', 'train',
         '--mode', 'transformed')
    drawn = sorted(out.glob('*.jpg'))
    assert len(drawn) == 4
    # the augmented 256x256 image, then the targets at both resolutions
    assert cv2.imread(str(drawn[0])).shape == (3 * 256, 256, 3)


@pytest.mark.slow
def test_publish_model(python, training_run, tmp_path):
    from higherhrnet_plugin.apis import load_checkpoint_file
    out = tmp_path / 'published.pth'
    _run(python, _mim_dir() / 'tools' / 'misc' / 'publish_model.py',
         training_run / 'epoch_1.pth', out)
    # the script renames the file in the background ("mv")
    for _ in range(100):
        published = list(tmp_path.glob('published-*.pth'))
        if published:
            break
        import time
        time.sleep(0.1)
    assert len(published) == 1
    checkpoint = load_checkpoint_file(published[0])
    assert set(checkpoint) == {'meta', 'state_dict'}
    assert checkpoint['meta']['dataset_meta']['num_keypoints'] == 17
    assert isinstance(checkpoint['state_dict']['head.final_layers.0.weight'],
                      torch.Tensor)
