"""A converted official checkpoint through MMPose's user-facing paths:
`mim test`, `inference_bottomup` and `MMPoseInferencer`."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import REPO, TINY_CONFIG, shared_path


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    src = shared_path('fixtures', 'official_tiny_higherhrnet.pth')
    dst = tmp_path_factory.mktemp('ckpt') / 'tiny_mmpose.pth'
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'convert_checkpoint.py'),
         str(src), str(dst), '--config', str(TINY_CONFIG)],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    return dst


@pytest.mark.slow
def test_mim_test_prints_coco_ap(converted, tmp_path):
    root = shared_path('data', 'coco')
    mim = Path(sys.executable).with_name('mim')
    options = [
        f'test_dataloader.dataset.data_root={root}/',
        f'test_evaluator.ann_file={root}/test_coco.json',
        'model.test_cfg.flip_test=True',
    ]
    result = subprocess.run(
        [str(mim), 'test', 'mmpose', str(TINY_CONFIG), '--checkpoint',
         str(converted), '--work-dir', str(tmp_path), '--cfg-options',
         *options],
        capture_output=True, text=True, timeout=600, cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS='2'))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert 'coco/AP:' in output, output[-3000:]
    assert 'Average Precision' in output
    # the converted weights loaded cleanly
    assert 'missing keys' not in output and 'unexpected key' not in output


def test_inference_bottomup_and_inferencer_draw_results(converted, tmp_path):
    import torch
    from mmpose.apis import MMPoseInferencer, inference_bottomup, init_model
    image = str(shared_path('data', 'coco', '000000000785.jpg'))
    model = init_model(str(TINY_CONFIG), str(converted), device='cpu')
    # the converted weights are the official tiny model's
    fixture = np.load(shared_path('fixtures', 'official_tiny_io.npz'))
    with torch.no_grad():
        out0 = model.head(model.extract_feat(torch.from_numpy(
            fixture['input'])))[0]
    assert np.abs(out0.numpy() - fixture['output0']).max() < 1e-4

    result = inference_bottomup(model, image)[0]
    pred = result.pred_instances
    assert pred.keypoints.shape[1:] == (17, 2)
    assert pred.keypoint_scores.shape == pred.keypoints.shape[:2]
    if len(pred.keypoints):  # predictions are in original image pixels
        assert np.isfinite(pred.keypoints).all()

    inferencer = MMPoseInferencer(
        pose2d=str(TINY_CONFIG), pose2d_weights=str(converted),
        device='cpu')
    out_dir = tmp_path / 'vis'
    results = next(inferencer(image, vis_out_dir=str(out_dir)))
    assert len(results['predictions']) == 1
    drawn = out_dir / Path(image).name
    assert drawn.exists() and drawn.stat().st_size > 1000
