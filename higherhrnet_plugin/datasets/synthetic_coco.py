"""A small synthetic COCO-format person-keypoint set (stick figures), so the
quick start runs on a machine without any dataset."""
import json
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from mmpose.datasets.datasets.utils import parse_pose_metainfo

# A standing person in COCO keypoint order, in units of its height, origin at
# the centre of the hips.
_TEMPLATE = np.array([
    [0.00, -0.80], [-0.04, -0.83], [0.04, -0.83], [-0.09, -0.81],
    [0.09, -0.81], [-0.17, -0.60], [0.17, -0.60], [-0.24, -0.35],
    [0.24, -0.35], [-0.27, -0.10], [0.27, -0.10], [-0.10, 0.00],
    [0.10, 0.00], [-0.12, 0.25], [0.12, 0.25], [-0.13, 0.50], [0.13, 0.50]
], np.float32)


def _coco_metainfo() -> dict:
    return parse_pose_metainfo(dict(from_file='configs/_base_/datasets/coco.py'))


def _random_person(rng: np.random.Generator, img_w: int,
                   img_h: int) -> np.ndarray:
    """(17, 2) keypoints of one randomly placed, posed stick figure."""
    height = rng.uniform(0.35, 0.8) * img_h
    joints = _TEMPLATE + rng.normal(0, 0.03, _TEMPLATE.shape)
    angle = np.deg2rad(rng.uniform(-15, 15))
    rotation = np.array([[np.cos(angle), -np.sin(angle)],
                         [np.sin(angle), np.cos(angle)]], np.float32)
    joints = joints @ rotation.T * height
    centre = rng.uniform([0.15 * img_w, 0.45 * img_h],
                         [0.85 * img_w, 0.6 * img_h])
    return joints + centre


def _draw(img: np.ndarray, keypoints: np.ndarray, skeleton, colour) -> None:
    thickness = max(2, int(np.ptp(keypoints[:, 1]) / 25))
    for a, b in skeleton:
        cv2.line(img, tuple(int(v) for v in keypoints[a]),
                 tuple(int(v) for v in keypoints[b]), colour, thickness,
                 cv2.LINE_AA)
    cv2.circle(img, tuple(int(v) for v in keypoints[0]), thickness * 3,
               colour, -1, cv2.LINE_AA)


def make_synthetic_coco(out_dir: Union[str, Path],
                        num_images: int = 24,
                        image_size=(320, 256),
                        max_people: int = 3,
                        seed: int = 0) -> Path:
    """Write ``images/*.jpg`` and ``annotations.json`` (COCO keypoints).

    Args:
        out_dir: folder to write into (created if needed).
        num_images: number of images.
        image_size: (w, h) of every image.
        max_people: 1 to this many stick figures per image.
        seed: random seed, so the set is reproducible.

    Returns:
        Path: the annotation file.
    """
    out_dir = Path(out_dir)
    (out_dir / 'images').mkdir(parents=True, exist_ok=True)
    meta = _coco_metainfo()
    skeleton = meta['skeleton_links']
    rng = np.random.default_rng(seed)
    w, h = image_size
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        img = rng.integers(60, 200, (h, w, 3), dtype=np.uint8)
        img = cv2.GaussianBlur(img, (0, 0), 8)
        for _ in range(rng.integers(1, max_people + 1)):
            keypoints = _random_person(rng, w, h)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            _draw(img, keypoints, skeleton, colour)
            annotations.append(
                _annotation(len(annotations) + 1, image_id, keypoints, w, h))
        name = f'{image_id:06d}.jpg'
        cv2.imwrite(str(out_dir / 'images' / name), img)
        images.append(dict(id=image_id, file_name=name, width=w, height=h))
    categories = [
        dict(
            id=1,
            name='person',
            supercategory='person',
            keypoints=[meta['keypoint_id2name'][i] for i in range(17)],
            skeleton=[[a + 1, b + 1] for a, b in skeleton])
    ]
    ann_file = out_dir / 'annotations.json'
    ann_file.write_text(
        json.dumps(
            dict(images=images, annotations=annotations,
                 categories=categories)))
    return ann_file


def _annotation(ann_id: int, image_id: int, keypoints: np.ndarray, w: int,
                h: int) -> dict:
    inside = (keypoints[:, 0] >= 0) & (keypoints[:, 0] < w) & (
        keypoints[:, 1] >= 0) & (keypoints[:, 1] < h)
    x0, y0 = np.clip(keypoints.min(0) - 10, 0, [w - 1, h - 1])
    x1, y1 = np.clip(keypoints.max(0) + 10, 0, [w - 1, h - 1])
    flat = np.concatenate(
        [keypoints, np.where(inside, 2, 0)[:, None]], axis=1)
    flat[~inside, :2] = 0
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=1,
        iscrowd=0,
        num_keypoints=int(inside.sum()),
        keypoints=[round(float(v), 2) for v in flat.reshape(-1)],
        bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
        area=float((x1 - x0) * (y1 - y0)),
        segmentation=[[float(x0), float(y0), float(x1), float(y0),
                       float(x1), float(y1), float(x0), float(y1)]])
