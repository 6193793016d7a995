"""ONNX export of the network and the ONNX Runtime pose estimator, against
PyTorch, with the converted official tiny checkpoint (real weights): raw
outputs, people, and the AP of the config's test loop."""
import copy
import subprocess
import sys

import numpy as np
import pytest
import torch

from .conftest import REPO, TINY_CONFIG, shared_path

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

IMAGE = ('data', 'coco', '000000000785.jpg')


@pytest.fixture(scope='module')
def checkpoint(converted_tiny):
    return converted_tiny


def _load_config(**test_cfg):
    from mmengine.config import Config
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.model.test_cfg.update(test_cfg)
    return cfg


def _init_model(checkpoint, cfg):
    from mmpose.apis import init_model
    return init_model(cfg, str(checkpoint), device='cpu')


@pytest.fixture(scope='module')
def onnx_file(checkpoint, tmp_path_factory):
    from higherhrnet_plugin.deploy import export_onnx
    model = _init_model(checkpoint, _load_config())
    out = tmp_path_factory.mktemp('onnx') / 'tiny.onnx'
    # traced at 256x256; every other size below is the dynamic graph at work
    export_onnx(model, str(out), input_shape=(1, 3, 256, 256))
    return out


@pytest.fixture(scope='module')
def image():
    import cv2
    return cv2.imread(str(shared_path(*IMAGE)))


def _network(model, x):
    with torch.no_grad():
        return [o.numpy() for o in model.head(model.extract_feat(x))]


def test_graph_has_named_dynamic_outputs(onnx_file):
    import onnx
    graph = onnx.load(str(onnx_file)).graph
    assert [i.name for i in graph.input] == ['input']
    assert [o.name for o in graph.output] == ['output0', 'output1']
    dims = [d.dim_param or d.dim_value
            for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims[1] == 3 and all(isinstance(d, str) for d in
                                (dims[0], dims[2], dims[3]))
    # the network only: no decoding or aggregation op in the graph
    ops = {n.op_type for n in graph.node}
    assert ops <= {'Conv', 'ConvTranspose', 'Relu', 'Add', 'Resize',
                   'Concat', 'BatchNormalization', 'Constant'}, ops


def _onnx_model(onnx_file, cfg):
    from higherhrnet_plugin.deploy import init_onnx_model
    return init_onnx_model(cfg, str(onnx_file))


def _network_inputs(model, image):
    from higherhrnet_plugin.apis import network_inputs
    inputs = network_inputs(model, image)
    return inputs[0] if isinstance(inputs, list) else inputs


def test_onnx_matches_pytorch_at_two_sizes(checkpoint, onnx_file, image):
    cfg = _load_config()
    model = _init_model(checkpoint, cfg)
    model64 = copy.deepcopy(model).double()
    ort_model = _onnx_model(onnx_file, cfg)

    fixture = np.load(shared_path('fixtures', 'official_tiny_io.npz'))
    wide = _network_inputs(ort_model, image).numpy()  # 640x425 -> 448x256
    assert wide.shape == (1, 3, 256, 448)
    inputs = {
        '256x256': fixture['input'],
        '256x448': wide,
        # batch 2, as the flip test runs it
        '2x256x448': np.concatenate([wide, wide[..., ::-1]]),
    }
    for name, x in inputs.items():
        x = torch.from_numpy(np.ascontiguousarray(x))
        ort_out = [o.numpy() for o in ort_model.network(x)]
        ref = _network(model, x)
        assert [o.shape for o in ort_out] == [r.shape for r in ref]
        B, _, H, W = x.shape
        assert ref[0].shape == (B, 34, H // 4, W // 4)
        assert ref[1].shape == (B, 17, H // 2, W // 2)
        # float64 reference (single images only, it is slow)
        exact = _network(model64, x.double()) if B == 1 else [None] * len(ref)
        for i, (o, r, e) in enumerate(zip(ort_out, ref, exact)):
            err = np.abs(o - r).max()
            line = (f'{name} output{i}: ORT vs PyTorch max abs err {err:.2e} '
                    f'(max |output| {np.abs(r).max():.1f})')
            if e is not None:
                ort_exact = np.abs(o - e).max()
                torch_exact = np.abs(r - e).max()
                print(f'{line}; vs float64: ORT {ort_exact:.2e}, PyTorch '
                      f'{torch_exact:.2e}')
                # The outputs reach ~30 (random weights, real BN statistics),
                # so float32 rounding alone puts PyTorch ~1e-4 away from the
                # float64 result. ORT must be as exact as PyTorch itself ...
                assert ort_exact <= 2 * torch_exact + 1e-6, (name, i)
            else:
                print(line)
            # ... and agree with it to ~1e-5 of the output range.
            assert err < 5e-4, (name, i, err)
    # and with the official implementation's outputs on the same input
    ort_out = ort_model.network(torch.from_numpy(fixture['input']))
    for i, o in enumerate(ort_out):
        assert np.abs(o.numpy() - fixture[f'output{i}']).max() < 5e-4


def _match_people(ours, theirs):
    """Pair the people of both paths; returns their keypoint distances.

    Both paths must find the same number of people with the same scores.
    With hundreds of random-weight "people", some scores tie to within
    float32 noise and may come out in either order, so people are paired by
    their keypoints and scores (minimum-cost matching) before comparing.

    Returns:
        tuple: the matched ``theirs`` index of each of ``ours`` and the max
        keypoint coordinate difference (N, K) of every pair.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist
    assert len(ours.bbox_scores) == len(theirs.bbox_scores) > 0
    assert ours.keypoints.shape == theirs.keypoints.shape
    n = len(ours.bbox_scores)
    cost = cdist(ours.keypoints.reshape(n, -1),
                 theirs.keypoints.reshape(n, -1), 'chebyshev') + cdist(
                     ours.bbox_scores[:, None], theirs.bbox_scores[:, None])
    rows, cols = linear_sum_assignment(cost)
    np.testing.assert_allclose(ours.bbox_scores[rows],
                               theirs.bbox_scores[cols], rtol=0, atol=1e-4)
    dist = np.abs(ours.keypoints[rows] - theirs.keypoints[cols]).max(-1)
    return cols, dist


def _check_same_people(ours, theirs):
    """Same people, keypoints within 1e-2 px, scores within 1e-4."""
    cols, dist = _match_people(ours, theirs)
    score_err = np.abs(ours.bbox_scores - theirs.bbox_scores[cols]).max()
    kpt_score_err = np.abs(ours.keypoint_scores -
                           theirs.keypoint_scores[cols]).max()
    print(f'{len(cols)} people: max keypoint difference {dist.max():.2e} px, '
          f'person scores {score_err:.2e}, keypoint scores '
          f'{kpt_score_err:.2e}')
    assert dist.max() < 1e-2, dist.max()
    np.testing.assert_allclose(
        ours.keypoint_scores, theirs.keypoint_scores[cols], rtol=1e-5,
        atol=1e-4)
    return cols


def _check_heatmaps(ours, theirs):
    """The aggregated heatmaps, in image pixels, agree to float32 noise."""
    ours_hm = ours.pred_fields.heatmaps
    theirs_hm = theirs.pred_fields.heatmaps
    assert ours_hm.shape == theirs_hm.shape
    err = (ours_hm - theirs_hm).abs().max().item()
    print(f'heatmaps {tuple(ours_hm.shape)} in image pixels: err {err:.2e}')
    # float32 noise of the network (see above), ~1e-5 of the map range
    assert err < 2e-5 * theirs_hm.abs().max().item()


def test_end_to_end_matches_inference_bottomup(checkpoint, onnx_file, image):
    from mmpose.apis import inference_bottomup

    # Flip test on: exercises the batch-of-two run, unflip and the tag
    # concatenation as well as the resize and the inverse map. The grouping
    # without the refinement step must agree exactly (see the next test).
    cfg = _load_config(flip_test=True, output_heatmaps=True)
    cfg.model.head.decoder.decode_refine = False
    model = _init_model(checkpoint, cfg)
    ours = inference_bottomup(_onnx_model(onnx_file, cfg), image)[0]
    theirs = inference_bottomup(model, image)[0]
    # PoseDataSamples with everything MMPose's visualiser and metric read
    assert type(ours) is type(theirs)
    assert set(theirs.pred_instances.keys()) <= set(ours.pred_instances.keys())
    _check_heatmaps(ours, theirs)
    # heatmaps cover the image, at the input's resolution
    h, w = ours.pred_fields.heatmaps.shape[1:]
    assert h == 256 and abs(w / h - image.shape[1] / image.shape[0]) < 0.01
    _check_same_people(ours.pred_instances, theirs.pred_instances)
    print(f'flip test: {len(ours.pred_instances)} people, same as PyTorch')
    # in original image pixels: inside the image box the input covers
    low = ours.input_center - ours.input_scale / 2
    found = ours.pred_instances.keypoint_scores > 0
    kpts = ours.pred_instances.keypoints[found]
    assert (kpts >= low - 1).all()
    assert (kpts <= low + ours.input_scale + 1).all()
    assert kpts[:, 0].max() > 0.9 * image.shape[1]


def test_shipped_config_matches_inference_bottomup(checkpoint, onnx_file,
                                                   image):
    """The tiny config unchanged (no flip test, refinement on).

    Refinement fills missing joints at argmax(heatmap - round(tag distance))
    over the whole map; on these random maps near-ties abound, so float32
    noise (~1e-5 relative) may move a very few filled-in joints. The people
    and their scores (computed before refinement) must still be identical.
    """
    from mmpose.apis import inference_bottomup
    cfg = _load_config()
    model = _init_model(checkpoint, cfg)
    ours = inference_bottomup(_onnx_model(onnx_file, cfg), image)[0]
    theirs = inference_bottomup(model, image)[0]
    _, dist = _match_people(ours.pred_instances, theirs.pred_instances)
    moved = int((dist >= 1e-2).sum())
    print(f'refine on: {len(ours.pred_instances)} people, {moved} of '
          f'{dist.size} keypoints differ')
    assert moved <= max(3, dist.size // 1000)


def test_multiscale_flip_matches_inference_bottomup(checkpoint, onnx_file,
                                                    image):
    from mmpose.apis import inference_bottomup
    cfg = _load_config(
        flip_test=True, multiscale_test=True, output_heatmaps=True)
    cfg.model.head.decoder.decode_refine = False
    cfg.test_dataloader.dataset.pipeline[1].aug_scales = [2, 0.5]
    model = _init_model(checkpoint, cfg)
    ort_model = _onnx_model(onnx_file, cfg)
    ours = inference_bottomup(ort_model, image)[0]
    # sides aligned to 64 at the smallest scale
    assert [tuple(s) for s in ours.scale_input_shapes] == [(256, 512),
                                                           (512, 1024),
                                                           (128, 256)]
    theirs = inference_bottomup(model, image)[0]
    _check_heatmaps(ours, theirs)
    _check_same_people(ours.pred_instances, theirs.pred_instances)
    print(f'multi-scale + flip: {len(ours.pred_instances)} people, same as '
          'PyTorch')


def test_same_people_and_ap_as_pytorch_on_coco(checkpoint, onnx_file,
                                               tmp_path):
    """The config's test loop on ../shared/data/coco: tools/test_onnx.py
    prints the metrics `mim test` prints, with the same AP, and the people
    of every image are those of PyTorch."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from higherhrnet_plugin.deploy import test_onnx_model
    root = shared_path('data', 'coco')
    options = {
        'test_dataloader.dataset.data_root': f'{root}/',
        'test_evaluator.ann_file': f'{root}/test_coco.json',
        'model.test_cfg.flip_test': True,
        'model.head.decoder.decode_refine': False,
    }
    ours = test_onnx_model(str(TINY_CONFIG), str(onnx_file),
                           str(tmp_path / 'onnx'), options)
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.merge_from_dict(options)
    cfg.update(work_dir=str(tmp_path / 'torch'), load_from=str(checkpoint))
    theirs = Runner.from_cfg(cfg).test()
    print(f'ONNX Runtime {ours}\nPyTorch      {theirs}')
    assert set(ours) == set(theirs) and 'coco/AP' in ours
    for key in theirs:
        assert ours[key] == pytest.approx(theirs[key], abs=1e-6), key

    from mmpose.apis import inference_bottomup
    cfg = _load_config(flip_test=True)
    cfg.model.head.decoder.decode_refine = False
    model = _init_model(checkpoint, cfg)
    ort_model = _onnx_model(onnx_file, cfg)
    for path in sorted(root.glob('*.jpg')):
        _check_same_people(
            inference_bottomup(ort_model, str(path))[0].pred_instances,
            inference_bottomup(model, str(path))[0].pred_instances)


def test_cli_prints_the_metrics_of_mim_test(onnx_file, tmp_path):
    root = shared_path('data', 'coco')
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'test_onnx.py'),
         str(TINY_CONFIG), str(onnx_file), '--work-dir', str(tmp_path),
         '--cfg-options', f'test_dataloader.dataset.data_root={root}/',
         f'test_evaluator.ann_file={root}/test_coco.json'],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    # MMEngine's test-loop line and COCO's table, as `mim test` prints them
    assert 'Epoch(test) [4/4]' in output and 'coco/AP:' in output, \
        output[-3000:]
    assert 'Average Precision' in output


def test_cli_reports_missing_model_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'test_onnx.py'),
         str(TINY_CONFIG), str(tmp_path / 'missing.onnx')],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'missing.onnx' in lines[0], result.stderr


def test_export_cli_reports_missing_file_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'export_onnx.py'),
         str(TINY_CONFIG), str(tmp_path / 'missing.pth'),
         str(tmp_path / 'out.onnx')],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'missing.pth' in lines[0], result.stderr
    assert not (tmp_path / 'out.onnx').exists()
