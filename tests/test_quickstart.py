"""The quick start's synthetic data, its learning curve and a shortened run
of ``tools/quickstart.py``.

The accuracy the full quick start reaches (AP >= 0.5 on held-out images in
minutes) is checked by running it (``bash tools/quickstart.sh``), not here:
a shortened run only shows that every stage works and reports.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from higherhrnet_plugin.datasets.synthetic_coco import (
    NUM_KEYPOINTS, make_synthetic_coco, make_synthetic_coco_splits)
from higherhrnet_plugin.visualization import plot_learning_curve, read_scalars

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def splits(tmp_path_factory):
    out = tmp_path_factory.mktemp('synthetic')
    return make_synthetic_coco_splits(out, num_train=12, num_val=6, seed=3)


def _load(ann_file):
    return json.loads(Path(ann_file).read_text())


def test_splits_differ(splits):
    (train_ann, train_dir), (val_ann, val_dir) = splits['train'], splits['val']
    train, val = _load(train_ann), _load(val_ann)
    assert len(train['images']) == 12 and len(val['images']) == 6
    # image 1 of each split: different pixels, different people
    a = cv2.imread(str(train_dir / train['images'][0]['file_name']))
    b = cv2.imread(str(val_dir / val['images'][0]['file_name']))
    assert a.shape == b.shape and np.abs(a.astype(int) - b).mean() > 10
    first = [[x['keypoints'] for x in d['annotations'] if x['image_id'] == 1]
             for d in (train, val)]
    assert first[0] != first[1]


def test_annotations_are_valid_coco(splits):
    from pycocotools.coco import COCO as PyCOCO
    from xtcocotools.coco import COCO as XtCOCO
    for ann_file, img_dir in splits.values():
        data = _load(ann_file)
        for coco in (PyCOCO(str(ann_file)), XtCOCO(str(ann_file))):
            assert coco.getCatIds() == [1]
            assert len(coco.getAnnIds()) == len(data['annotations'])
        coco = XtCOCO(str(ann_file))
        assert len(coco.loadCats(1)[0]['keypoints']) == NUM_KEYPOINTS
        images = {img['id']: img for img in data['images']}
        for img in images.values():
            assert cv2.imread(str(img_dir / img['file_name'])).shape[:2] == (
                img['height'], img['width'])
        for ann in data['annotations']:
            img = images[ann['image_id']]
            mask = coco.annToMask(ann)
            assert mask.shape == (img['height'], img['width'])
            assert 0.5 * ann['area'] < mask.sum() < 2 * ann['area'] + 50
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            assert x + w <= img['width'] and y + h <= img['height']
            kpts = np.array(ann['keypoints']).reshape(NUM_KEYPOINTS, 3)
            assert set(kpts[:, 2]) <= {0, 1, 2}
            assert ann['num_keypoints'] == int((kpts[:, 2] > 0).sum())
            shown = kpts[kpts[:, 2] > 0]
            assert (shown[:, 0] >= 0).all() and (shown[:, 0] < img['width']
                                                 ).all()
            assert (shown[:, 1] >= 0).all() and (shown[:, 1] < img['height']
                                                 ).all()
            assert (kpts[kpts[:, 2] == 0, :2] == 0).all()


def test_people_crowds_and_occlusion_present(splits):
    anns = [a for ann_file, _ in splits.values()
            for a in _load(ann_file)['annotations']]
    crowds = [a for a in anns if a['iscrowd']]
    people = [a for a in anns if not a['iscrowd']]
    assert crowds, 'no crowd region in 18 images (crowd_prob 0.3)'
    for crowd in crowds:
        assert crowd['num_keypoints'] == 0
        assert set(crowd['segmentation']) == {'counts', 'size'}  # RLE
    visibility = np.concatenate(
        [np.array(a['keypoints'])[2::3] for a in people])
    assert (visibility == 1).any(), 'no keypoint covered by another person'
    assert (visibility == 2).mean() > 0.5


def test_images_need_grouping(splits):
    """Several annotated people per image, and people whose boxes
    overlap: keypoints have to be grouped, not just detected."""
    for ann_file, _ in splits.values():
        by_image = {}
        for a in _load(ann_file)['annotations']:
            if not a['iscrowd'] and a['num_keypoints'] > 0:
                by_image.setdefault(a['image_id'], []).append(a['bbox'])
        counts = [len(boxes) for boxes in by_image.values()]
        assert np.mean(counts) >= 2 and max(counts) >= 3, counts
        overlapping = sum(
            _overlap(a, b) > 0 for boxes in by_image.values()
            for i, a in enumerate(boxes) for b in boxes[i + 1:])
        assert overlapping >= len(by_image) / 2, overlapping


def _overlap(a, b) -> float:
    """Intersection area of two COCO boxes (x, y, w, h)."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0)


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a = make_synthetic_coco(tmp_path / 'a', num_images=3, seed=5)
    b = make_synthetic_coco(tmp_path / 'b', num_images=3, seed=5)
    c = make_synthetic_coco(tmp_path / 'c', num_images=3, seed=6)
    assert a.read_text() == b.read_text() != c.read_text()
    for name in ('000001.jpg', '000003.jpg'):
        assert (tmp_path / 'a' / 'train' / name).read_bytes() == (
            tmp_path / 'b' / 'train' / name).read_bytes()
    # asked again with the same settings: kept, not drawn again
    stamp = a.stat().st_mtime_ns
    make_synthetic_coco(tmp_path / 'a', num_images=3, seed=5)
    assert a.stat().st_mtime_ns == stamp
    make_synthetic_coco(tmp_path / 'a', num_images=3, seed=5, crowd_prob=1.)
    assert a.stat().st_mtime_ns != stamp


def test_unknown_setting_is_named(tmp_path):
    with pytest.raises(TypeError, match='crowd_probability'):
        make_synthetic_coco(tmp_path, 1, crowd_probability=1.)


def _write_scalars(path: Path, entries) -> Path:
    path.write_text('\n'.join(json.dumps(e) for e in entries) + '\n')
    return path


def test_learning_curve(tmp_path):
    losses = dict(loss_heatmap_0=2e-3, loss_heatmap_1=1e-3, loss_pull_0=1e-5,
                  loss_push_0=4e-4)
    entries = [dict(losses, epoch=e, iter=i, step=i)
               for e, i in ((1, 5), (1, 10), (2, 15), (2, 20))]
    entries.insert(2, {'coco/AP': 0.1, 'coco/AR': 0.2, 'step': 1})
    entries.append({'coco/AP': 0.3, 'coco/AR': 0.4, 'step': 2})
    scalars = read_scalars(_write_scalars(tmp_path / 's.json', entries))
    assert [e['iter'] for e in scalars['train']] == [5, 10, 15, 20]
    # validations placed at the last iteration of their epoch
    assert [(e['iter'], e['coco/AP']) for e in scalars['val']] == [(10, 0.1),
                                                                  (20, 0.3)]
    out = plot_learning_curve(tmp_path / 's.json', tmp_path / 'curve.png')
    img = cv2.imread(str(out))
    assert img is not None and img.shape[1] > img.shape[0] > 200


def test_bad_scalars_line_is_named(tmp_path):
    path = tmp_path / 'scalars.json'
    path.write_text('{"iter": 1, "epoch": 1}\n{oops\n')
    with pytest.raises(ValueError, match=r'scalars.json:2'):
        read_scalars(path)


@pytest.mark.slow
def test_short_quickstart_run(tmp_path):
    """tools/quickstart.py on 8 synthetic training images for 4 iterations:
    trains, validates on the held-out split, draws, summarises."""
    work_dir = tmp_path / 'work'
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.setdefault('OMP_NUM_THREADS', '2')
    proc = subprocess.run(
        [sys.executable, 'tools/quickstart.py', '--data', 'synthetic',
         '--data-dir', str(tmp_path / 'data'), '--work-dir', str(work_dir),
         '--train-images', '8', '--val-images', '3', '--max-iters', '4'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    for line in ('data       : synthetic people', 'training   : 2 epoch(s), 4 '
                 'iterations of batch 4', 'evaluation : COCO AP',
                 '3 held-out validation images', 'prediction : ',
                 'curve      : ', 'time       : '):
        assert line in out, f'{line!r} missing from\n{out[-3000:]}'
    assert re.search(r'iter 4/4 +loss \d', out), out[-3000:]
    assert 'validation after epoch 2: COCO AP' in out
    for name in ('prediction.png', 'learning_curve.png'):
        img = cv2.imread(str(work_dir / name))
        assert img is not None, name
    run_dirs = list(work_dir.glob('*/vis_data/scalars.json'))
    assert len(run_dirs) == 1
    scalars = read_scalars(run_dirs[0])
    assert {'loss_heatmap_0', 'loss_heatmap_1', 'loss_pull_0',
            'loss_push_0'} <= set(scalars['train'][-1])
    val = scalars['val']
    # one validation per epoch here (the config's 4, at most one an epoch)
    assert [v['step'] for v in val] == [1, 2]
    assert {'coco/AP', 'coco/AR'} <= set(val[-1])
    assert (work_dir / 'epoch_2.pth').is_file()
    # the console shows progress and the summary, MMEngine's log is in
    # the work dir
    assert 'Epoch(train)' not in out
    assert 'Epoch(train)' in (work_dir / 'quickstart.log').read_text()


def _fake_coco(root: Path, num_images: int) -> Path:
    """A COCO-style val2017 folder (synthetic images under real names)."""
    ann = make_synthetic_coco(root / 'gen', num_images, seed=1, split='val')
    (root / 'annotations').mkdir(parents=True)
    target = root / 'annotations' / 'person_keypoints_val2017.json'
    target.write_text(ann.read_text())
    (root / 'gen' / 'val').rename(root / 'val2017')
    return target


def test_data_sources_in_order(tmp_path):
    from higherhrnet_plugin.apis.quickstart import prepare_data
    repo, work = tmp_path / 'repo', tmp_path / 'work'
    shared = tmp_path / 'shared'
    kwargs = dict(num_train=4, num_val=2, shared_root=shared,
                  synthetic_dir=tmp_path / 'synthetic')
    # nothing real: synthetic train / val splits
    data = prepare_data(repo, work, **kwargs)
    assert data.synthetic and data.held_out
    assert (data.num_images('train'), data.num_images('val')) == (4, 2)
    # ../shared/data/coco: its images, not held out
    (shared / 'data' / 'coco').mkdir(parents=True)
    (shared / 'data' / 'coco' / 'test_coco.json').write_text(
        data.train[0].read_text())
    data = prepare_data(repo, work, **kwargs)
    assert not data.synthetic and not data.held_out
    assert data.train == data.val
    # data/coco wins: disjoint subsets of val2017
    _fake_coco(repo / 'data' / 'coco', 6)
    data = prepare_data(repo, work, **kwargs)
    assert not data.synthetic and data.held_out
    train_ids = {i['id'] for i in _load(data.train[0])['images']}
    val_ids = {i['id'] for i in _load(data.val[0])['images']}
    assert len(train_ids) == 4 and len(val_ids) == 2
    assert not train_ids & val_ids
    # asked for explicitly
    assert prepare_data(repo, work, 'synthetic', **kwargs).synthetic
    with pytest.raises(FileNotFoundError, match='person_keypoints_val2017'):
        prepare_data(tmp_path / 'elsewhere', work, 'coco', **kwargs)


def test_config_follows_the_data_and_the_length(tmp_path):
    from higherhrnet_plugin.apis.quickstart import (QuickstartData,
                                                    build_config)
    config = (REPO / 'configs' / 'higherhrnet' / 'synthetic' /
              'higherhrnet_hrnet-w16-tiny_1xb4-24e_synthetic-256x256.py')
    splits = make_synthetic_coco_splits(tmp_path, 8, 2)
    synthetic = QuickstartData('s', splits['train'], splits['val'], True,
                               True)
    cfg = build_config(config, synthetic, tmp_path / 'w', max_iters=10)
    assert cfg.train_cfg.max_epochs == 5  # 2 iterations an epoch
    assert cfg.param_scheduler[-1].end == cfg.param_scheduler[-1].T_max == 5
    assert cfg.val_evaluator.ann_file == str(splits['val'][0])
    types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert 'RandomFlip' not in types
    real = QuickstartData('r', splits['train'], splits['val'], False, True)
    cfg = build_config(config, real, tmp_path / 'w')
    types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert types.index('RandomFlip') == types.index('BottomupRandomAffine') + 1
    # the config's number of iterations, counted on 200 training images
    from mmengine.config import Config
    epochs = Config.fromfile(str(config)).train_cfg.max_epochs
    assert cfg.train_cfg.max_epochs * 2 == pytest.approx(epochs * 50,
                                                         rel=0.01)
