"""Bad and unusual input: image files, image formats and sizes, annotations,
checkpoints and configs, through ``LoadImageOrReport``, ``tools/demo.py``,
the evaluation loop, the training pipeline, ``init_model`` and the
checkpoint converter.

The converted official tiny checkpoint (random weights) is used where
predictions are needed; it finds many "people" everywhere, so the tests
ask it for few candidates (``decode_topk=5``) to stay fast. An initialised,
untrained model (head conv weights ~N(0, 0.001)) stands in for a model that
finds nobody.
"""
import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from .conftest import REPO, TINY_CONFIG, build_model, load_tool, shared_path

COCO_IMAGES = ('000000000785.jpg', '000000040083.jpg', '000000196141.jpg',
               '000000197388.jpg')
K = 17
FAST_DECODE = {'model.head.decoder.decode_topk': 5}


# ------------------------------------------------------------------ helpers


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Two threads on two shared cores are many times slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope='module')
def demo():
    return load_tool('demo')


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """The official tiny fixture, converted once by the converter CLI."""
    src = shared_path('fixtures', 'official_tiny_higherhrnet.pth')
    dst = tmp_path_factory.mktemp('ckpt') / 'tiny_mmpose.pth'
    code = load_tool('convert_checkpoint').main(
        [str(src), str(dst), '--config', str(TINY_CONFIG)])
    assert code == 0 and dst.is_file()
    return dst


@pytest.fixture(scope='module')
def untrained(tmp_path_factory):
    """A checkpoint of the tiny model as initialised: it finds nobody."""
    model = build_model(TINY_CONFIG)
    model.init_weights()
    dst = tmp_path_factory.mktemp('ckpt') / 'tiny_untrained.pth'
    torch.save({'state_dict': model.state_dict()}, dst)
    return dst


def robust_config(**options):
    """The tiny config with the robust loader in its test pipeline (what
    docs/demo.md asks the configs to use) and fast decoding."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.merge_from_dict(dict(FAST_DECODE, **options))
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        pipeline = loader.dataset.pipeline
        pipeline[0] = dict(type='LoadImageOrReport', on_error='report')
        pack = pipeline[-1]
        if 'load_error' not in pack['meta_keys']:
            pack['meta_keys'] = tuple(pack['meta_keys']) + ('load_error', )
    return cfg


@pytest.fixture(scope='module')
def tiny_model(converted):
    from mmpose.apis import init_model
    return init_model(robust_config(), str(converted), device='cpu')


@pytest.fixture(scope='module')
def empty_model(untrained):
    from mmpose.apis import init_model
    return init_model(robust_config(), str(untrained), device='cpu')


@contextlib.contextmanager
def captured_log(level=logging.WARNING):
    """What MMEngine's current logger emits (print_log(logger='current'))."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    messages = []

    class _Collect(logging.Handler):

        def emit(self, record):
            messages.append(record.getMessage())

    handler = _Collect(level)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def write_bad_files(folder: Path, source: Path) -> dict:
    """Bad image files (name -> expected reason fragment)."""
    data = source.read_bytes()
    (folder / 'truncated.jpg').write_bytes(data[:len(data) // 3])
    (folder / 'corrupt.jpg').write_bytes(b'\xde\xad\xbe\xef' * 64)
    (folder / 'empty.jpg').write_bytes(b'')
    (folder / 'missing.jpg').symlink_to(folder / 'gone.jpg')  # dangling
    return {
        'truncated.jpg': 'truncated JPEG',
        'corrupt.jpg': 'not an image file',
        'empty.jpg': 'empty (0 bytes)',
        'missing.jpg': 'broken symbolic link',
    }


def write_format_images(folder: Path) -> dict:
    """Grayscale, RGBA and 16-bit PNGs (name -> (h, w, expected BGR))."""
    cv2.imwrite(str(folder / 'gray.png'), np.full((40, 50), 90, np.uint8))
    cv2.imwrite(str(folder / 'rgba.png'),
                np.full((30, 70, 4), (10, 20, 30, 0), np.uint8))
    cv2.imwrite(str(folder / 'deep16.png'),
                np.full((60, 20, 3), (256, 25600, 65535), np.uint16))
    cv2.imwrite(str(folder / 'gray16.png'),
                np.full((35, 45), 40000, np.uint16))
    return {
        'gray.png': (40, 50, (90, 90, 90)),
        'rgba.png': (30, 70, (10, 20, 30)),
        'deep16.png': (60, 20, (1, 100, 255)),
        'gray16.png': (35, 45, (156, 156, 156)),
    }


def assert_empty_prediction(pred):
    assert pred.keypoints.shape == (0, K, 2)
    assert pred.keypoint_scores.shape == (0, K)
    if 'bbox_scores' in pred:
        assert np.asarray(pred.bbox_scores).shape == (0, )


def assert_prediction_shapes(pred, image_hw=None):
    n = len(pred.keypoints)
    assert pred.keypoints.shape == (n, K, 2)
    assert pred.keypoint_scores.shape == (n, K)
    assert np.isfinite(pred.keypoints).all()
    if image_hw is not None and n:
        # predictions land on the image (the input box may be a bit larger)
        h, w = image_hw
        margin = 0.5 * max(h, w) + 2
        assert pred.keypoints[..., 0].min() > -margin
        assert pred.keypoints[..., 0].max() < w + margin
        assert pred.keypoints[..., 1].min() > -margin
        assert pred.keypoints[..., 1].max() < h + margin


# ---------------------------------------------------- LoadImageOrReport


@pytest.fixture
def bad_files(tmp_path):
    source = shared_path('data', 'coco', COCO_IMAGES[0])
    return tmp_path, write_bad_files(tmp_path, source)


@pytest.mark.parametrize('name', ['truncated.jpg', 'corrupt.jpg', 'empty.jpg',
                                  'missing.jpg', 'nowhere.jpg', 'folder.jpg'])
def test_loader_reports_bad_file_and_substitutes_blank(bad_files, name):
    from higherhrnet_plugin.datasets.transforms import LoadImageOrReport
    folder, reasons = bad_files
    reasons = dict(reasons, **{'nowhere.jpg': 'no such file',
                               'folder.jpg': 'is a directory'})
    (folder / 'folder.jpg').mkdir()
    path = str(folder / name)
    bbox = np.array([[10, 20, 99, 79]], np.float32)  # bottom-up data_info
    with captured_log() as log:
        results = LoadImageOrReport(on_error='report')(
            dict(img_path=path, bbox=bbox, img_id=1))
    assert reasons[name] in results['load_error']
    warnings = [m for m in log if path in m]
    assert len(warnings) == 1, log
    assert reasons[name] in warnings[0]
    img = results['img']
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert not img.any()
    assert results['ori_shape'] == results['img_shape'] == img.shape[:2]
    if name == 'truncated.jpg':  # the JPEG header survives: real size
        assert img.shape[:2] == (425, 640)
    else:  # at least as large as the annotations
        assert img.shape[:2] == (80, 100)


@pytest.mark.parametrize('name', ['truncated.jpg', 'corrupt.jpg', 'empty.jpg',
                                  'missing.jpg'])
def test_loader_raises_naming_the_file_in_training_mode(bad_files, name):
    from higherhrnet_plugin.datasets.transforms import (ImageLoadError,
                                                        LoadImageOrReport)
    folder, reasons = bad_files
    path = str(folder / name)
    with pytest.raises(ImageLoadError) as err:
        LoadImageOrReport(on_error='raise')(dict(img_path=path))
    assert path in str(err.value) and reasons[name] in str(err.value)
    with pytest.raises(ImageLoadError):  # raising is the default
        LoadImageOrReport()(dict(img_path=path))


def test_loader_blank_size_falls_back_to_hints_then_default(tmp_path):
    from higherhrnet_plugin.datasets.transforms import LoadImageOrReport
    missing = str(tmp_path / 'missing.jpg')
    load = LoadImageOrReport(on_error='report', blank_shape=(48, 32))
    assert load(dict(img_path=missing))['img'].shape == (48, 32, 3)
    hinted = load(dict(img_path=missing, ori_shape=(300, 200)))
    assert hinted['img'].shape == (300, 200, 3)
    info = load(dict(img_path=missing, height=120, width=160))
    assert info['img'].shape == (120, 160, 3)
    with pytest.raises(ValueError, match='on_error'):
        LoadImageOrReport(on_error='ignore')


@pytest.mark.parametrize('color_type, backend', [('color', 'cv2'),
                                                 ('unchanged', 'cv2'),
                                                 ('grayscale', 'cv2'),
                                                 ('color', 'pillow')])
def test_loader_normalises_formats(tmp_path, color_type, backend):
    from higherhrnet_plugin.datasets.transforms import LoadImageOrReport
    expected = write_format_images(tmp_path)
    load = LoadImageOrReport(color_type=color_type, imdecode_backend=backend)
    for name, (h, w, bgr) in expected.items():
        img = load(dict(img_path=str(tmp_path / name)))['img']
        assert img.shape == (h, w, 3) and img.dtype == np.uint8, name
        if color_type == 'grayscale':
            assert len(np.unique(img[0, 0])) == 1, name
        elif not (backend == 'pillow' and name == 'gray16.png'):
            # (mmcv's pillow path clips 16-bit gray to 255: not ours to fix)
            assert tuple(img[0, 0]) == bgr, (name, img[0, 0])


def test_mmpose_loadimage_already_converts_files_with_color_type_color(
        tmp_path):
    """What the plugin relies on: with color_type='color' and cv2, MMPose's
    LoadImage already gives 8-bit BGR for these files; the normalisation is
    for arrays, other color types and backends."""
    from mmpose.datasets.transforms import LoadImage
    for name, (h, w, bgr) in write_format_images(tmp_path).items():
        img = LoadImage()(dict(img_path=str(tmp_path / name)))['img']
        assert img.shape == (h, w, 3) and img.dtype == np.uint8, name
        assert tuple(img[0, 0]) == bgr, name


def test_loader_normalises_arrays():
    from higherhrnet_plugin.datasets.transforms import LoadImageOrReport
    load = LoadImageOrReport()
    cases = [
        (np.full((5, 6), 7, np.uint8), (7, 7, 7)),
        (np.full((5, 6, 1), 7, np.uint8), (7, 7, 7)),
        (np.full((5, 6, 2), 7, np.uint8), (7, 7, 7)),
        (np.full((5, 6, 4), (1, 2, 3, 4), np.uint8), (1, 2, 3)),
        (np.full((5, 6, 3), 51200, np.uint16), (200, 200, 200)),
        (np.full((5, 6, 3), 0.5, np.float32), (128, 128, 128)),
    ]
    for array, bgr in cases:
        img = load(dict(img=array))['img']
        assert img.shape == (5, 6, 3) and img.dtype == np.uint8
        assert tuple(img[0, 0]) == bgr, array.shape
    same = np.zeros((5, 6, 3), np.uint8)
    assert load(dict(img=same))['img'] is same  # no copy when nothing to do
    with pytest.raises(Exception, match='not an image'):
        load(dict(img=np.zeros((0, 4, 3), np.uint8)))


# ------------------------------------------------- formats and sizes


@pytest.mark.parametrize('as_array', [False, True], ids=['file', 'array'])
def test_inference_on_gray_rgba_and_16bit_images(tiny_model, tmp_path,
                                                 as_array):
    from mmpose.apis import inference_bottomup
    for name, (h, w, _) in write_format_images(tmp_path).items():
        path = str(tmp_path / name)
        image = cv2.imread(path, cv2.IMREAD_UNCHANGED) if as_array else path
        sample = inference_bottomup(tiny_model, image)[0]
        assert tuple(sample.metainfo['ori_shape']) == (h, w), name
        assert_prediction_shapes(sample.pred_instances, (h, w))


def test_inference_on_1x1_image(tiny_model, tmp_path):
    from mmpose.apis import inference_bottomup
    path = tmp_path / 'dot.png'
    cv2.imwrite(str(path), np.full((1, 1, 3), 200, np.uint8))
    sample = inference_bottomup(tiny_model, str(path))[0]
    assert tuple(sample.metainfo['ori_shape']) == (1, 1)
    assert_prediction_shapes(sample.pred_instances, (1, 1))


def test_image_without_people_gives_empty_result(empty_model, tmp_path):
    from mmpose.apis import inference_bottomup
    path = tmp_path / 'wall.jpg'
    cv2.imwrite(str(path), np.full((120, 160, 3), 180, np.uint8))
    for image in (str(path), cv2.imread(str(path))):
        sample = inference_bottomup(empty_model, image)[0]
        assert_empty_prediction(sample.pred_instances)


# ------------------------------------------------------------------- demo


def run_demo(demo, capsys, ckpt, inputs, out, *extra):
    code = demo.main([
        str(TINY_CONFIG), str(ckpt), str(inputs), '--out', str(out),
        '--cfg-options', *[f'{k}={v}' for k, v in FAST_DECODE.items()],
        *extra
    ])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_demo_folder_reports_and_skips_bad_files(demo, converted, tmp_path,
                                                 capsys):
    inputs = tmp_path / 'in'
    inputs.mkdir()
    good = shared_path('data', 'coco', COCO_IMAGES[1])
    shutil.copy(good, inputs / good.name)
    reasons = write_bad_files(inputs, good)
    formats = write_format_images(inputs)
    (inputs / 'notes.txt').write_text('not an image')
    out = tmp_path / 'out'

    code, stdout, stderr = run_demo(demo, capsys, converted, inputs, out)
    assert code == 0, stdout + stderr
    processed = {good.name, *formats}
    assert {p.name for p in out.iterdir()} == processed
    for name in processed:
        drawn = cv2.imread(str(out / name))
        original = cv2.imread(str(inputs / name))
        assert drawn.shape == original.shape[:2] + (3, ), name
    assert f'processed: {len(processed)} ({len(processed)} images' in stdout
    assert f'skipped:   {len(reasons)}' in stdout
    for name, reason in reasons.items():
        line = next(line for line in stdout.splitlines()
                    if line.strip().startswith(f'- {name}:'))
        assert reason in line, line
        assert f'skipped {name}: ' in stderr
    assert 'ignored:   1' in stdout
    people = int(re.search(r'people found: (\d+)', stdout).group(1))
    assert people > 0  # the random-weight model finds "people" anywhere


@pytest.mark.parametrize('case', ['missing', 'corrupt', 'empty-folder'])
def test_demo_exits_non_zero_when_nothing_is_processed(
        demo, converted, tmp_path, capsys, case):
    if case == 'missing':
        target = tmp_path / 'no_such.jpg'
    elif case == 'corrupt':
        target = tmp_path / 'corrupt.png'
        target.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\x00' * 50)
    else:
        target = tmp_path / 'nothing'
        target.mkdir()
        (target / 'readme.txt').write_text('x')
    code, stdout, stderr = run_demo(demo, capsys, converted, target,
                                    tmp_path / 'out')
    assert code == 1
    assert str(target) in stdout + stderr
    assert 'Traceback' not in stderr
    if case == 'corrupt':
        assert 'truncated PNG' in stdout
        assert 'nothing could be processed' in stderr


def test_demo_video_with_heatmap_and_frames(demo, converted, tmp_path,
                                            capsys):
    video = tmp_path / 'clip.mp4'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'mp4v'), 5,
                             (96, 64))
    for i in range(3):
        writer.write(np.full((64, 96, 3), 60 * i, np.uint8))
    writer.release()
    out = tmp_path / 'out'
    code, stdout, stderr = run_demo(demo, capsys, converted, video, out,
                                    '--heatmap', '--save-frames', '--flip')
    assert code == 0, stdout + stderr
    assert '1 videos with 3 frames' in stdout
    result = cv2.VideoCapture(str(out / 'clip.mp4'))
    assert result.get(cv2.CAP_PROP_FRAME_COUNT) == 3
    # the heatmap is drawn below the skeletons: twice the height
    assert (result.get(cv2.CAP_PROP_FRAME_WIDTH),
            result.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (96, 128)
    result.release()
    assert sorted(p.name for p in (out / 'clip_frames').iterdir()) == [
        '000000.jpg', '000001.jpg', '000002.jpg'
    ]


def test_demo_no_people_and_1x1_image(demo, untrained, tmp_path, capsys):
    inputs = tmp_path / 'in'
    inputs.mkdir()
    cv2.imwrite(str(inputs / 'wall.png'), np.full((90, 120, 3), 70, np.uint8))
    cv2.imwrite(str(inputs / 'dot.png'), np.full((1, 1, 3), 70, np.uint8))
    out = tmp_path / 'out'
    code, stdout, stderr = run_demo(demo, capsys, untrained, inputs, out,
                                    '--heatmap')
    assert code == 0, stdout + stderr
    assert 'processed: 2' in stdout and 'people found: 0' in stdout
    assert cv2.imread(str(out / 'wall.png')).shape == (180, 120, 3)
    assert cv2.imread(str(out / 'dot.png')).shape == (2, 1, 3)


@pytest.mark.slow
def test_demo_huge_image_keeps_memory_sane(converted, tmp_path):
    """10000 x 10000 (a uniform PNG of ~100 KB): processed, the drawing is
    downscaled to --max-vis-side, and the process stays well below the
    several GB that full-resolution copies would take."""
    inputs = tmp_path / 'in'
    inputs.mkdir()
    cv2.imwrite(str(inputs / 'huge.png'),
                np.full((10000, 10000), 128, np.uint8),
                [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert (inputs / 'huge.png').stat().st_size < 2_000_000
    out = tmp_path / 'out'
    script = (
        'import resource, runpy, sys\n'
        'sys.argv = sys.argv[1:]\n'
        'try:\n'
        '    runpy.run_path(sys.argv[0], run_name="__main__")\n'
        'finally:\n'
        '    print("MAXRSS_KB", resource.getrusage('
        'resource.RUSAGE_SELF).ru_maxrss)\n')
    proc = subprocess.run(
        [sys.executable, '-c', script,
         str(REPO / 'tools' / 'demo.py'), str(TINY_CONFIG), str(converted),
         str(inputs / 'huge.png'), '--out', str(out), '--heatmap',
         '--cfg-options', *[f'{k}={v}' for k, v in FAST_DECODE.items()]],
        capture_output=True, text=True, timeout=600, cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'processed: 1' in proc.stdout
    drawn = cv2.imread(str(out / 'huge.png'))
    assert drawn.shape == (8192, 4096, 3)  # 4096 wide, heatmap below
    max_rss_gb = int(re.search(r'MAXRSS_KB (\d+)', proc.stdout).group(1)) \
        / 2**20
    # the decoded image alone is 0.3 GB (10000 x 10000 x 3 bytes)
    assert max_rss_gb < 2.0, f'peak memory {max_rss_gb:.2f} GB'


# -------------------------------------------------------------- checkpoints


def _truncated(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[:len(data) // 2])
    return dst


def _topdown_hrnet_checkpoint(dst: Path) -> Path:
    """An MMPose 1.x top-down HRNet checkpoint: backbone.* keys like ours,
    but a top-down heatmap head (head.final_layer.*)."""
    model = build_model(TINY_CONFIG)
    state_dict = {
        k: v
        for k, v in model.state_dict().items() if k.startswith('backbone.')
    }
    state_dict['head.final_layer.weight'] = torch.zeros(17, 8, 1, 1)
    state_dict['head.final_layer.bias'] = torch.zeros(17)
    torch.save({'state_dict': state_dict, 'meta': {'epoch': 210}}, dst)
    return dst


@pytest.mark.parametrize('kind', ['truncated', 'empty'])
def test_init_model_names_a_damaged_checkpoint(converted, tmp_path, kind):
    from mmpose.apis import init_model
    if kind == 'truncated':
        ckpt = _truncated(converted, tmp_path / 'truncated.pth')
    else:
        ckpt = tmp_path / 'empty.pth'
        ckpt.write_bytes(b'')
    with pytest.raises(Exception) as err:
        init_model(str(TINY_CONFIG), str(ckpt), device='cpu')
    message = str(err.value)
    assert str(ckpt) in message, message
    assert re.search(r'truncated|corrupt|empty', message), message


def test_init_model_warns_about_a_checkpoint_of_another_model(
        tmp_path, capsys):
    """MMPose's init_model loads non-strictly: a checkpoint of another model
    is only reported in the output (the demo refuses it, see below)."""
    from mmpose.apis import init_model
    ckpt = _topdown_hrnet_checkpoint(tmp_path / 'topdown_hrnet.pth')
    capsys.readouterr()
    with captured_log(logging.INFO) as log:
        init_model(str(TINY_CONFIG), str(ckpt), device='cpu')
    text = '\n'.join(log) + capsys.readouterr().out
    assert str(ckpt) in text
    assert 'missing keys in source state_dict' in text
    assert 'head.final_layers.0.weight' in text


@pytest.mark.parametrize('kind', ['truncated', 'topdown', 'other-config'])
def test_demo_refuses_bad_checkpoint_naming_it(demo, converted, tmp_path,
                                               capsys, kind):
    if kind == 'truncated':
        ckpt = _truncated(converted, tmp_path / 'truncated.pth')
        fragment = 'truncated or corrupt'
    elif kind == 'topdown':
        ckpt = _topdown_hrnet_checkpoint(tmp_path / 'topdown_hrnet.pth')
        fragment = "'head.final_layer.weight'"
    else:  # the tiny weights with a config of another width
        ckpt = converted
        fragment = 'does not match the model of'
    image = shared_path('data', 'coco', COCO_IMAGES[0])
    config = str(TINY_CONFIG)
    if kind == 'other-config':
        config = str(TINY_CONFIG.with_name(
            'higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py'))
    code = demo.main([config, str(ckpt), str(image), '--out',
                      str(tmp_path / 'out')])
    stderr = capsys.readouterr().err
    assert code == 1
    lines = [line for line in stderr.splitlines() if 'error' in line]
    assert len(lines) == 1, stderr
    assert str(ckpt) in lines[0] and fragment in lines[0], lines[0]
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('kind', ['topdown', 'truncated'])
def test_converter_cli_names_bad_checkpoint(converted, tmp_path, capsys,
                                            kind):
    """Cases tests/test_checkpoint_conversion.py does not cover: a top-down
    MMPose HRNet checkpoint and a truncated MMPose 1.x checkpoint."""
    if kind == 'topdown':
        src = _topdown_hrnet_checkpoint(tmp_path / 'topdown_hrnet.pth')
        fragment = "'head.final_layer.weight'"
    else:
        src = _truncated(converted, tmp_path / 'truncated.pth')
        fragment = 'truncated or corrupt'
    dst = tmp_path / 'out.pth'
    code = load_tool('convert_checkpoint').main(
        [str(src), str(dst), '--config', str(TINY_CONFIG)])
    stderr = capsys.readouterr().err
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and str(src) in lines[0], stderr
    assert fragment in lines[0], lines[0]
    assert not dst.exists()


# --------------------------------------------------------------- evaluation


def _coco_copy(root: Path) -> Path:
    source = shared_path('data', 'coco')
    root.mkdir()
    for item in source.iterdir():
        shutil.copy(item, root / item.name)
    return root


@pytest.fixture(scope='module')
def evaluation(tiny_model, tmp_path_factory):
    """Evaluate the tiny model on a copy of ../shared/data/coco in which
    one image file is truncated."""
    from mmengine.dataset import pseudo_collate
    from mmengine.evaluator import Evaluator
    from mmengine.registry import init_default_scope
    from mmpose.registry import DATASETS

    init_default_scope('mmpose')
    root = _coco_copy(tmp_path_factory.mktemp('eval') / 'coco')
    bad = root / COCO_IMAGES[1]
    _truncated(bad, bad)
    cfg = tiny_model.cfg
    dataset = DATASETS.build(
        dict(cfg.val_dataloader.dataset, data_root=str(root) + '/'))
    evaluator = Evaluator(
        dict(cfg.val_evaluator, ann_file=str(root / 'test_coco.json'),
             outfile_prefix=str(root / 'preds')))
    evaluator.dataset_meta = dataset.metainfo
    num_predictions = {}
    with captured_log() as log:
        for i in range(len(dataset)):
            batch = pseudo_collate([dataset[i]])
            with torch.no_grad():
                outputs = tiny_model.test_step(batch)
            sample = outputs[0]
            name = Path(sample.metainfo['img_path']).name
            num_predictions[name] = len(sample.pred_instances.keypoints)
            evaluator.process(outputs, batch)
    metric = evaluator.metrics[0]
    num_results = len(metric.results)
    metrics = evaluator.evaluate(len(dataset))
    written = json.loads((root / 'preds.keypoints.json').read_text())
    return dict(bad=bad, log=log, num_predictions=num_predictions,
                num_results=num_results, metrics=metrics, written=written)


def test_evaluation_reports_bad_image_and_evaluates_the_rest(evaluation):
    bad = evaluation['bad']
    warnings = [m for m in evaluation['log'] if str(bad) in m]
    assert len(warnings) == 1, evaluation['log']
    assert 'truncated JPEG' in warnings[0]
    assert evaluation['num_results'] == len(COCO_IMAGES)
    for name in COCO_IMAGES:
        if name != bad.name:
            assert evaluation['num_predictions'][name] > 0, name
    ap = evaluation['metrics']['coco/AP']
    assert np.isfinite(ap) and 0 <= ap <= 1
    ids = {int(name.split('.')[0]) for name in COCO_IMAGES}
    good_ids = ids - {int(bad.stem)}
    assert good_ids <= {p['image_id'] for p in evaluation['written']}


def test_bad_image_gets_no_predictions(evaluation):
    """Needs HigherHRNetHead.predict to return no people for samples whose
    metainfo carries ``load_error`` (see docs/demo.md)."""
    bad = evaluation['bad']
    assert evaluation['num_predictions'][bad.name] == 0
    assert int(bad.stem) not in {
        p['image_id'] for p in evaluation['written']}


def test_configs_load_images_robustly():
    """The plugin's configs: the test pipeline reports bad images, the
    training pipeline raises naming them, and load_error reaches the model."""
    from mmengine.config import Config
    configs = sorted((REPO / 'configs' / 'higherhrnet').rglob('*.py'))
    assert configs
    for path in configs:
        cfg = Config.fromfile(str(path))
        for loader in (cfg.val_dataloader, cfg.test_dataloader):
            pipeline = loader.dataset.pipeline
            assert pipeline[0]['type'] == 'LoadImageOrReport', path
            assert pipeline[0].get('on_error') == 'report', path
            assert 'load_error' in pipeline[-1]['meta_keys'], path
        first = cfg.train_dataloader.dataset.pipeline[0]
        assert first['type'] == 'LoadImageOrReport', path
        assert first.get('on_error', 'raise') == 'raise', path


def test_training_pipeline_raises_naming_the_bad_image(tmp_path):
    """With the config's own training pipeline: a clear error, not a
    silently skipped image."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpose.registry import DATASETS

    init_default_scope('mmpose')
    root = _coco_copy(tmp_path / 'coco')
    bad = root / COCO_IMAGES[0]
    bad.write_bytes(b'')
    cfg = Config.fromfile(str(TINY_CONFIG))
    dataset = DATASETS.build(
        dict(cfg.train_dataloader.dataset, data_root=str(root) + '/'))
    index = next(i for i in range(len(dataset))
                 if Path(dataset.get_data_info(i)['img_path']) == bad)
    with pytest.raises(Exception) as err:
        dataset[index]
    message = str(err.value)
    assert str(bad) in message, message
    assert 'empty (0 bytes)' in message, message


# ------------------------------------------------- annotations (training)


def _annotation_set(root: Path) -> Path:
    """Two 128x96 images: one whose only person has every keypoint
    invisible (left half), one with only a crowd region (whole image)."""
    root.mkdir()
    h, w = 96, 128
    for name in ('invisible.jpg', 'crowd.jpg'):
        cv2.imwrite(str(root / name), np.full((h, w, 3), 120, np.uint8))
    categories = json.loads(
        shared_path('data', 'coco', 'test_coco.json').read_text())[
            'categories']
    annotations = [
        dict(id=1, image_id=1, category_id=1, iscrowd=0, num_keypoints=0,
             keypoints=[0] * 3 * K, bbox=[0, 0, 64, 96], area=6144.0,
             segmentation=[[0, 0, 64, 0, 64, 96, 0, 96]]),
        dict(id=2, image_id=2, category_id=1, iscrowd=1, num_keypoints=0,
             keypoints=[0] * 3 * K, bbox=[0, 0, 128, 96], area=12288.0,
             segmentation=dict(counts=[0, h * w], size=[h, w])),
    ]
    images = [
        dict(id=1, file_name='invisible.jpg', height=h, width=w),
        dict(id=2, file_name='crowd.jpg', height=h, width=w),
    ]
    ann_file = root / 'ann.json'
    ann_file.write_text(json.dumps(dict(images=images,
                                        annotations=annotations,
                                        categories=categories)))
    return ann_file


@pytest.fixture(scope='module')
def unannotated_batch(tmp_path_factory):
    """Both images through the tiny config's training pipeline, without
    augmentation (so image regions map to known heatmap regions)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpose.registry import DATASETS

    init_default_scope('mmpose')
    ann_file = _annotation_set(tmp_path_factory.mktemp('ann') / 'data')
    cfg = Config.fromfile(str(TINY_CONFIG))
    pipeline = cfg.train_dataloader.dataset.pipeline
    pipeline[1].update(shift_factor=0., scale_factor=(1., 1.),
                       rotate_factor=0.)
    pipeline[2].update(prob=0.)
    dataset = DATASETS.build(
        dict(cfg.train_dataloader.dataset, data_root=str(ann_file.parent),
             ann_file=ann_file.name, data_prefix=dict(img='')))
    assert len(dataset) == 2
    return {Path(dataset.get_data_info(i)['img_path']).stem: dataset[i]
            for i in range(2)}


def test_invisible_and_crowd_annotations_give_no_keypoint_targets(
        unannotated_batch):
    for name, data in unannotated_batch.items():
        sample = data['data_samples']
        indices = sample.gt_instance_labels.keypoint_indices
        assert indices.shape[1:] == (K, 2), name
        assert int(indices[..., 1].sum()) == 0, name  # no valid keypoint
        for level in range(2):
            assert not sample.gt_fields[level].heatmaps.any(), name
    # the crowd region covers the whole image: everything is masked
    crowd = unannotated_batch['crowd']['data_samples']
    for level in range(2):
        assert not crowd.gt_fields[level].heatmap_mask.any()
    # the unannotated person covers the left half: masked there only
    # (the 96-pixel-high image fills the square input: input x 0..255
    # shows image x 16..112)
    person = unannotated_batch['invisible']['data_samples']
    for level in range(2):
        mask = person.gt_fields[level].heatmap_mask.numpy()
        width = mask.shape[1]
        third = width // 3
        assert not mask[:, :third].any(), level
        assert mask[:, -third:].all(), level


def test_loss_is_finite_without_any_valid_keypoint(unannotated_batch):
    from mmengine.dataset import pseudo_collate
    model = build_model(TINY_CONFIG)
    model.init_weights()
    model.train()
    batch = pseudo_collate(list(unannotated_batch.values()))
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode='loss')
    assert losses
    total = sum(v.sum() for v in losses.values())
    for name, value in losses.items():
        assert torch.isfinite(value).all(), (name, value)
    total.backward()
    for name, param in model.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name


# ----------------------------------------------- mismatched joint counts


def _assert_names_counts(err, model_count=14, data_count=17):
    message = str(err)
    assert re.search(rf'\b{model_count}\b', message), message
    assert re.search(rf'\b{data_count}\b', message), message
    assert 'keypoint' in message.lower(), message


@pytest.mark.parametrize('options', [
    {'model.head.num_keypoints': 14},
    {'model.head.num_keypoints': 14,
     'model.head.decoder.decode_keypoint_order': None},
    {'model.head.num_keypoints': 14,
     'model.head.decoder.decode_keypoint_order': None,
     'model.test_cfg.flip_test': True},
], ids=['as-given', 'order-fixed', 'order-fixed-flip'])
def test_mismatched_joint_count_inference_names_both_counts(options):
    """A 14-keypoint head on COCO (17) data: a clear error at build or at
    the first prediction, naming 14 and 17."""
    from mmpose.apis import inference_bottomup, init_model
    with pytest.raises(Exception) as err:
        model = init_model(str(TINY_CONFIG), None, device='cpu',
                           cfg_options=dict(FAST_DECODE, **options))
        inference_bottomup(model, np.full((64, 64, 3), 100, np.uint8))
    _assert_names_counts(err.value)


@pytest.mark.parametrize('options', [
    {'model.head.num_keypoints': 14},
    {'model.head.num_keypoints': 14,
     'model.head.decoder.decode_keypoint_order': None},
], ids=['as-given', 'order-fixed'])
def test_mismatched_joint_count_training_names_both_counts(options):
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmpose.registry import DATASETS, MODELS

    init_default_scope('mmpose')
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.merge_from_dict(options)
    root = shared_path('data', 'coco')
    dataset = DATASETS.build(
        dict(cfg.train_dataloader.dataset, data_root=str(root) + '/'))
    with pytest.raises(Exception) as err:
        model = MODELS.build(cfg.model)
        batch = pseudo_collate([dataset[0]])
        data = model.data_preprocessor(batch, training=True)
        model(**data, mode='loss')
    _assert_names_counts(err.value)
