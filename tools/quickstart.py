"""Quick start: train a tiny HigherHRNet briefly, evaluate it with the COCO
metric and draw its predictions on an image.

Data, first match wins:
  1. ``data/coco`` (``annotations/person_keypoints_val2017.json`` and
     ``val2017/``): the first ``--max-images`` images of real COCO val;
  2. ``../shared/data/coco/test_coco.json``: four real COCO images;
  3. otherwise a synthetic COCO-format set of stick figures, generated into
     the work dir.

Usage: python tools/quickstart.py [--work-dir DIR] [--epochs N]
"""
import argparse
import json
import os.path as osp
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = (REPO / 'configs' / 'higherhrnet' / 'coco' /
               'higherhrnet_hrnet-tiny_1xb2-30e_coco-256x256.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/quickstart')
    parser.add_argument(
        '--epochs', type=int, default=None,
        help='training epochs (default: 60 on 4 images, else 20)')
    parser.add_argument(
        '--max-images', type=int, default=64,
        help='images taken from real COCO val when data/coco exists')
    return parser.parse_args()


def subset_coco(ann_file: Path, max_images: int, out_file: Path) -> Path:
    """Write the first ``max_images`` images (and their annotations)."""
    data = json.loads(ann_file.read_text())
    images = data['images'][:max_images]
    keep = {img['id'] for img in images}
    data['images'] = images
    data['annotations'] = [
        a for a in data['annotations'] if a['image_id'] in keep
    ]
    out_file.write_text(json.dumps(data))
    return out_file


def choose_dataset(work_dir: Path, max_images: int):
    """Return (description, ann_file, image folder)."""
    coco = REPO / 'data' / 'coco'
    coco_ann = coco / 'annotations' / 'person_keypoints_val2017.json'
    if coco_ann.exists() and (coco / 'val2017').is_dir():
        ann = subset_coco(coco_ann, max_images,
                          work_dir / 'coco_val_subset.json')
        return f'real COCO val2017 (first {max_images} images)', ann, \
            coco / 'val2017'
    shared = REPO.parent / 'shared' / 'data' / 'coco' / 'test_coco.json'
    if shared.exists():
        return '4 real COCO val2017 images from ../shared/data/coco', \
            shared, shared.parent
    from higherhrnet_plugin.datasets.synthetic_coco import make_synthetic_coco
    ann = make_synthetic_coco(work_dir / 'synthetic', num_images=24)
    return 'synthetic stick figures (24 images, generated)', ann, \
        ann.parent / 'images'


def build_config(ann_file: Path, img_dir: Path, work_dir: Path, epochs: int):
    from mmengine.config import Config
    cfg = Config.fromfile(str(TINY_CONFIG))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.update(
            data_root='', ann_file=str(ann_file),
            data_prefix=dict(img=str(img_dir) + '/'))
    cfg.val_evaluator.ann_file = str(ann_file)
    cfg.test_evaluator.ann_file = str(ann_file)
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs
    cfg.default_hooks.checkpoint.interval = epochs
    cfg.default_hooks.logger.interval = 5
    cfg.work_dir = str(work_dir)
    return cfg


def draw_prediction(config, checkpoint: str, image: str, out_file: Path):
    """Run MMPose's bottom-up inference on ``image`` and save the drawing."""
    from mmcv import imread
    from mmpose.apis import inference_bottomup
    from mmpose.registry import VISUALIZERS

    from higherhrnet_plugin.apis import init_model
    model = init_model(config, checkpoint)  # strict, weights only
    result = inference_bottomup(model, image)[0]
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.set_dataset_meta(model.dataset_meta)
    visualizer.add_datasample(
        'prediction', imread(image, channel_order='rgb'), result,
        draw_gt=False, show=False, out_file=str(out_file), kpt_thr=0.1)
    return len(result.pred_instances)


def main():
    args = parse_args()
    import higherhrnet_plugin  # noqa: F401  (registers the modules)
    from mmengine.runner import Runner
    work_dir = Path(args.work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()

    source, ann_file, img_dir = choose_dataset(work_dir, args.max_images)
    print(f'[quickstart] data: {source}\n[quickstart] annotations: {ann_file}',
          flush=True)
    num_images = len(json.loads(Path(ann_file).read_text())['images'])
    epochs = args.epochs or (60 if num_images <= 8 else 20)
    cfg = build_config(Path(ann_file), Path(img_dir), work_dir, epochs)

    print(f'[quickstart] training the tiny HigherHRNet for {epochs} epochs',
          flush=True)
    runner = Runner.from_cfg(cfg)
    runner.train()
    print('[quickstart] evaluating (COCO keypoint AP)', flush=True)
    metrics = runner.test()
    checkpoint = osp.join(cfg.work_dir, f'epoch_{epochs}.pth')

    first_image = json.loads(Path(ann_file).read_text())['images'][0]
    image = str(Path(img_dir) / first_image['file_name'])
    out_file = work_dir / 'prediction.png'
    people = draw_prediction(cfg, checkpoint, image, out_file)

    print('\n[quickstart] done in {:.0f} s'.format(time.time() - started))
    print(f'  data        : {source}')
    print(f'  checkpoint  : {checkpoint}')
    print('  COCO AP     : {:.3f}  (AR {:.3f})'.format(
        metrics.get('coco/AP', float('nan')),
        metrics.get('coco/AR', float('nan'))))
    print(f'  prediction  : {out_file} ({people} people drawn on {image})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
