"""Batched inference: test batches holding images of different sizes and
aspect ratios give every image exactly the people it gets on its own
(single scale, flip test, multi-scale + flip test), through the test
pipeline, the data preprocessor's padding, the estimator, the head's
post-processing and ``MMPoseInferencer(batch_size=N)``.

The network is wrapped with :class:`PerImageNetwork` (each image run on its
own at its own size) because a CNN's outputs near an image border depend on
the padding beyond it; everything after the network must be exact.
"""
import shutil

import numpy as np
import pytest
import torch

from higherhrnet_plugin.testing import PerImageNetwork

from .conftest import TINY_CONFIG, shared_path

# landscape COCO images and portrait / square OCHuman images: 4 different
# input sizes with the tiny config (256 short side)
IMAGES = [('coco', '000000000785.jpg'), ('ochuman', '000817.jpg'),
          ('coco', '000000196141.jpg'), ('ochuman', '003799.jpg'),
          ('coco', '000000040083.jpg'), ('ochuman', '003896.jpg')]
MODES = {
    'single': dict(flip_test=False),
    'flip': dict(flip_test=True),
    'multiscale_flip': dict(flip_test=True, multiscale_test=True),
}


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    from higherhrnet_plugin.checkpoint_conversion import (
        convert_checkpoint, save_converted_checkpoint)
    src = shared_path('fixtures', 'official_tiny_higherhrnet.pth')
    result = convert_checkpoint(src, config=str(TINY_CONFIG))
    return str(save_converted_checkpoint(
        result, tmp_path_factory.mktemp('ckpt') / 'tiny.pth'))


def _config(mode):
    from mmengine.config import Config
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.model.test_cfg.update(MODES[mode])
    # no refinement: keeps the test fast; everything else is on
    cfg.model.head.decoder.decode_refine = False
    if cfg.model.test_cfg.get('multiscale_test'):
        cfg.test_dataloader.dataset.pipeline[1].aug_scales = [2, 0.5]
    return cfg


def _model(checkpoint, mode):
    from mmpose.apis import init_model
    model = init_model(_config(mode), checkpoint, device='cpu')
    model.network = PerImageNetwork(model.network)
    return model


def _images():
    return [str(shared_path('data', *name)) for name in IMAGES]


def _predict(model, batch_size):
    from higherhrnet_plugin.apis import inference_bottomup_batch
    return inference_bottomup_batch(model, _images(), batch_size)


def assert_same_people(a, b, where):
    for key in ('keypoints', 'keypoint_scores', 'bbox_scores'):
        np.testing.assert_array_equal(
            np.asarray(a.pred_instances[key]),
            np.asarray(b.pred_instances[key]), err_msg=f'{where}: {key}')


@pytest.mark.parametrize('mode', MODES)
def test_batch_of_four_equals_single_images(checkpoint, mode):
    model = _model(checkpoint, mode)
    singles = _predict(model, batch_size=1)
    batched = _predict(model, batch_size=4)
    sizes = {tuple(s.img_shape) for s in singles}
    assert len(sizes) >= 4, sizes  # landscape, portrait and square inputs
    assert len(batched) == len(IMAGES)
    people = 0
    for name, one, many in zip(IMAGES, singles, batched):
        assert many.img_path == one.img_path
        # the batch really was padded around some images
        assert tuple(many.batch_input_shape) != tuple(many.img_shape) or \
            name == IMAGES[0]
        assert_same_people(one, many, f'{mode} {name}')
        people += len(one.pred_instances)
        # found keypoints are in the image's own pixels: inside the box
        # its input covers
        found = one.pred_instances.keypoint_scores > 0
        low = one.input_center - one.input_scale / 2
        kpts = one.pred_instances.keypoints[found]
        assert (kpts >= low - 1).all()
        assert (kpts <= low + one.input_scale + 1).all()
    assert people > 0


def test_score_threshold_drops_people_below_it(checkpoint):
    model = _model(checkpoint, 'single')
    everyone = _predict(model, batch_size=2)
    scores = np.concatenate(
        [s.pred_instances.bbox_scores for s in everyone])
    threshold = float(np.median(scores))
    model.test_cfg['score_thr'] = threshold
    confident = _predict(model, batch_size=2)
    for all_people, kept in zip(everyone, confident):
        keep = all_people.pred_instances.bbox_scores >= threshold
        np.testing.assert_array_equal(kept.pred_instances.keypoints,
                                      all_people.pred_instances.keypoints[keep])
    assert 0 < sum(len(s.pred_instances) for s in confident) < len(scores)


def test_padded_batch_without_wrapper_runs(checkpoint):
    """The real padded batch (the network sees the padding): one result per
    image, people in image pixels."""
    from mmpose.apis import init_model
    model = init_model(_config('flip'), checkpoint, device='cpu')
    results = _predict(model, batch_size=4)
    assert [r.img_path for r in results] == _images()
    for result in results:
        assert result.pred_instances.keypoints.shape[1:] == (17, 2)


def test_inferencer_batches_a_folder_like_single_images(checkpoint, tmp_path):
    from mmpose.apis import MMPoseInferencer
    folder = tmp_path / 'images'
    folder.mkdir()
    for i, name in enumerate(IMAGES[:4]):
        shutil.copy(shared_path('data', *name), folder / f'{i}_{name[1]}')
    inferencer = MMPoseInferencer(pose2d=str(TINY_CONFIG),
                                  pose2d_weights=checkpoint, device='cpu')
    model = inferencer.inferencer.model
    model.network = PerImageNetwork(model.network)
    results = {}
    for batch_size in (1, 4):
        model.network.calls = 0
        out = list(inferencer(str(folder), batch_size=batch_size,
                              return_datasamples=True))
        results[batch_size] = [s for r in out for s in r['predictions']]
        assert model.network.calls == 4  # every image ran once
    assert len(results[1]) == len(results[4]) == 4
    for one, many in zip(results[1], results[4]):
        assert_same_people(one, many, one.img_path)
