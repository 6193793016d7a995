"""A synthetic COCO-format person-keypoint data set that a small HigherHRNet
learns in minutes on a CPU, and that still needs grouping.

Every image shows a few drawn people (COCO's 17 keypoints) in varied poses,
overlapping one another, over a textured background; some are partly hidden
behind an object, some images hold a crowd of small figures annotated as one
``iscrowd`` region. The people of one image are a group: about the same size
and dressed alike, so only where they stand tells them apart (sizes and
clothes vary from image to image). The train and validation splits are
drawn from independent random streams of one seed, so they never share an
image, and the same seed always writes the same files.

What makes the figures learnable quickly: every joint is a marked disc at the
end of a thick limb, and the two sides of a body differ (light joint marks
and light limbs on the person's left, dark on the right), so each keypoint
type is recognisable locally. People face the camera (their left is on the
image's right when upright), so horizontal-flip augmentation would contradict
the side marks: train without it.

Annotations follow COCO's conventions: visibility 2 for a visible keypoint,
1 for one covered by a person drawn in front, 0 (with x = y = 0) for one
outside the image or hidden behind an object; ``segmentation`` (polygons),
``bbox`` and ``area`` describe the visible silhouette; a crowd region is one
annotation with ``iscrowd=1``, an uncompressed RLE segmentation and no
keypoints.
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

Size = Tuple[int, int]  # (w, h)

#: Bumped whenever the drawing changes, so a set drawn by an older version is
#: not reused.
GENERATOR_VERSION = 3

#: The generator's settings, stored in each annotation file's ``info`` so an
#: existing set can be reused when they match.
DEFAULT_SETTINGS = dict(
    image_size=(256, 256),
    people_per_image=(2, 4),
    # The people of one image are a group standing at one distance from the
    # camera, dressed alike: their height (a fraction of the image height)
    # is drawn once per image and varies by +-height_spread between them,
    # their hips are within +-hip_line_spread (of the image height) of a
    # line drawn once per image (None: anywhere), and with same_clothes they
    # wear the same colours. Neither colour, size nor height in the image
    # then tells them apart, only their left-to-right position: what the
    # 1-D tags of the quick-start model learn to encode. With any of these
    # cues present, the tags latched onto it in about half of our runs and
    # separated far fewer people (see the quick-start config).
    person_height=(0.4, 0.8),
    height_spread=0.1,
    hip_line_spread=0.05,
    same_clothes=True,
    max_overlap=0.3,  # IoU of two people's keypoint boxes, where possible
    min_area=32**2,  # people showing less are left unannotated (as in COCO)
    crowd_prob=0.3,
    occluder_prob=0.3)

# COCO keypoint order: nose, eyes, ears, shoulders, elbows, wrists, hips,
# knees, ankles (left before right).
NUM_KEYPOINTS = 17
_LEFT = np.array([1, 3, 5, 7, 9, 11, 13, 15])
_LIMBS = {  # (start, end) keypoints, drawn as thick segments
    'thigh': ((11, 13), (12, 14)),
    'shin': ((13, 15), (14, 16)),
    'upper_arm': ((5, 7), (6, 8)),
    'forearm': ((7, 9), (8, 10)),
}
_LIMB_JOINTS = (5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)


def coco_person_category() -> dict:
    """COCO's ``person`` category with its 17 keypoints and skeleton."""
    import mmpose
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    # MMPose finds its own copy under .mim/ too, with a warning
    name = 'configs/_base_/datasets/coco.py'
    installed = Path(mmpose.__file__).parent / '.mim' / name
    meta = parse_pose_metainfo(
        dict(from_file=str(installed if installed.is_file() else name)))
    return dict(
        id=1,
        name='person',
        supercategory='person',
        keypoints=[meta['keypoint_id2name'][i] for i in range(NUM_KEYPOINTS)],
        skeleton=[[a + 1, b + 1] for a, b in meta['skeleton_links']])


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def sample_pose(rng: np.random.Generator) -> np.ndarray:
    """Keypoints (17, 2) of one random pose, in units of the person's height,
    origin at the centre of the hips, y pointing down.

    The torso leans, arms swing from hanging to raised and bend at the elbow
    (sometimes across the body), legs spread and bend at the knee; the head
    turns a little (face keypoints shift sideways).
    """
    kpts = np.zeros((NUM_KEYPOINTS, 2))
    torso = _rotation(np.deg2rad(rng.normal(0, 8)))
    up = torso @ [0, -1]
    side = torso @ [1, 0]  # towards the person's left (image right)
    neck = 0.30 * up
    head = neck + 0.11 * up
    turn = rng.uniform(-0.02, 0.02) * side
    kpts[0] = head - 0.012 * up + turn
    kpts[[1, 2]] = head + 0.014 * up + turn * 1.2 + np.outer([1, -1],
                                                            0.027 * side)
    kpts[[3, 4]] = head + 0.004 * up - turn * 0.5 + np.outer([1, -1],
                                                            0.06 * side)
    kpts[[5, 6]] = neck + np.outer([1, -1], 0.11 * side)
    kpts[[11, 12]] = np.outer([1, -1], 0.08 * side)
    for sign, (shoulder, elbow, wrist) in ((1, (5, 7, 9)), (-1, (6, 8, 10))):
        upper = np.deg2rad(rng.uniform(-20, 170))
        lower = upper + np.deg2rad(rng.uniform(-20, 140))
        kpts[elbow] = kpts[shoulder] + 0.16 * _limb(torso, sign, upper)
        kpts[wrist] = kpts[elbow] + 0.14 * _limb(torso, sign, lower)
    for sign, (hip, knee, ankle) in ((1, (11, 13, 15)), (-1, (12, 14, 16))):
        thigh = np.deg2rad(rng.uniform(-10, 40))
        shin = thigh + np.deg2rad(rng.uniform(-35, 25))
        kpts[knee] = kpts[hip] + rng.uniform(0.2, 0.24) * _limb(
            np.eye(2), sign, thigh)
        kpts[ankle] = kpts[knee] + rng.uniform(0.2, 0.24) * _limb(
            np.eye(2), sign, shin)
    return kpts


def _limb(frame: np.ndarray, sign: int, angle: float) -> np.ndarray:
    """Unit vector ``angle`` away from straight down, outwards on ``sign``'s
    side (+1: the person's left), in ``frame``."""
    return frame @ [sign * np.sin(angle), np.cos(angle)]


@dataclass
class _Clothes:
    """The colours (BGR) of a figure."""
    shirt: np.ndarray
    trousers: np.ndarray
    skin: np.ndarray
    shoes: np.ndarray

    @classmethod
    def random(cls, rng: np.random.Generator) -> '_Clothes':
        return cls(
            shirt=_saturated_colour(rng),
            trousers=_saturated_colour(rng) // 2 + 40,
            skin=np.array([rng.uniform(60, 170), rng.uniform(110, 190),
                           rng.uniform(170, 240)]),
            shoes=rng.uniform(20, 90, 3))


class _Person:
    """One figure placed in an image: keypoints (17, 2) in pixels, its
    height in pixels and its clothes."""

    def __init__(self, keypoints: np.ndarray, height: float,
                 clothes: _Clothes):
        self.keypoints = keypoints
        self.height = height
        self.clothes = clothes

    def draw(self, img: np.ndarray, mask: np.ndarray) -> None:
        """Draw the figure on ``img`` (BGR) and its silhouette (255) on
        ``mask``, both (h, w)."""
        k, h = self.keypoints, self.height
        limb_width = max(2, int(round(0.045 * h)))
        self._extremities(img, mask, limb_width)
        for name, colour in (('thigh', self.clothes.trousers),
                             ('shin', self.clothes.trousers * 0.8)):
            self._limbs(img, mask, _LIMBS[name], colour, limb_width + 1)
        torso = k[[5, 6, 12, 11]]
        torso = torso + (torso - torso.mean(0)) * 0.1
        for canvas, colour in ((img, self.clothes.shirt), (mask, 255)):
            cv2.fillConvexPoly(canvas, _px(torso), _bgr(colour), cv2.LINE_AA,
                               4)
        for name, colour in (('upper_arm', self.clothes.shirt * 0.85),
                             ('forearm', self.clothes.skin)):
            self._limbs(img, mask, _LIMBS[name], colour, limb_width)
        for j in _LIMB_JOINTS:
            mark = (235, 235, 235) if j in _LEFT else (25, 25, 25)
            _disc(img, mask, k[j], 0.55 * limb_width, mark)
        self._head(img, mask)

    def _extremities(self, img, mask, limb_width) -> None:
        """Hands beyond the wrists and shoes beyond the ankles (under the
        limbs), so that a wrist or an ankle is a junction, not just the end
        of a limb."""
        k, h = self.keypoints, self.height
        for elbow, wrist in ((7, 9), (8, 10)):
            direction = k[wrist] - k[elbow]
            direction /= np.linalg.norm(direction) + 1e-6
            _disc(img, mask, k[wrist] + 0.035 * h * direction, 0.028 * h,
                  self.clothes.skin * 0.8)
        for sign, (knee, ankle) in ((1, (13, 15)), (-1, (14, 16))):
            toe = k[ankle] + h * np.array([sign * 0.06, 0.015])
            for canvas, c in ((img, self.clothes.shoes), (mask, 255)):
                cv2.line(canvas, _px(k[ankle]), _px(toe), _bgr(c),
                         limb_width + 2, cv2.LINE_AA, 4)

    def _limbs(self, img, mask, pairs, colour, width) -> None:
        for side, (a, b) in enumerate(pairs):
            shade = colour * (1.15 if side == 0 else 0.75)  # left lighter
            for canvas, c in ((img, shade), (mask, 255)):
                cv2.line(canvas, _px(self.keypoints[a]),
                         _px(self.keypoints[b]), _bgr(c), width, cv2.LINE_AA,
                         4)

    def _head(self, img, mask) -> None:
        k, h = self.keypoints, self.height
        centre = (k[3] + k[4]) / 2
        _disc(img, mask, centre, 0.065 * h, self.clothes.skin)
        _disc(img, mask, k[3], 0.016 * h, (230, 230, 230))
        _disc(img, mask, k[4], 0.016 * h, (40, 40, 40))
        for j in (1, 2):
            _disc(img, mask, k[j], max(1.0, 0.011 * h), (30, 20, 20))
        _disc(img, mask, k[0], max(1.0, 0.012 * h), (40, 40, 200))


def _px(points: np.ndarray):
    """Points as cv2 integer pixel coordinates with 4 fractional bits."""
    fixed = np.round(np.asarray(points) * 16).astype(np.int32)
    return tuple(fixed) if fixed.ndim == 1 else fixed


def _bgr(colour) -> tuple:
    if np.isscalar(colour):
        return (float(colour), ) * 3
    return tuple(min(255.0, max(0.0, float(c))) for c in colour)


def _disc(img, mask, centre, radius, colour) -> None:
    r = int(round(max(1.0, radius) * 16))
    cv2.circle(img, _px(centre), r, _bgr(colour), -1, cv2.LINE_AA, 4)
    cv2.circle(mask, _px(centre), r, 255, -1, cv2.LINE_AA, 4)


def _saturated_colour(rng: np.random.Generator) -> np.ndarray:
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(170, 256),
                      rng.integers(150, 256)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float64)


def textured_background(rng: np.random.Generator, size: Size) -> np.ndarray:
    """(h, w, 3) uint8 BGR: a gradient, coloured blurred noise, sometimes
    stripes, and a few faint shapes, all less saturated than the people."""
    w, h = size
    top, bottom = rng.uniform(60, 200, (2, 3)).astype(np.float32)
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (h, w, 3))
    noise = rng.standard_normal((h, w, 3), dtype=np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), rng.uniform(1.5, 10))
    img = img + noise * (rng.uniform(10, 30) / (noise.std() + 1e-6))
    if rng.random() < 0.5:
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(6, 40)
        yy, xx = np.mgrid[:h, :w].astype(np.float32)
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi /
                                                            period)
        img += (np.sin(phase) * rng.uniform(8, 25))[..., None]
    shapes = img.copy()
    for _ in range(rng.integers(2, 8)):
        colour = _bgr(rng.uniform(50, 210, 3))
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        a, b = rng.uniform(8, w / 3, 2)
        if rng.random() < 0.5:
            cv2.rectangle(shapes, (int(x - a), int(y - b)),
                          (int(x + a), int(y + b)), colour, -1)
        else:
            cv2.ellipse(shapes, (int(x), int(y)), (int(a), int(b)),
                        rng.uniform(0, 180), 0, 360, colour, -1)
    img = cv2.addWeighted(img, 0.65, shapes, 0.35, 0)
    grey = img.mean(2, keepdims=True)
    img = grey + (img - grey) * 0.6
    return np.clip(img, 0, 255).astype(np.uint8)


@dataclass
class _Group:
    """What the people of one image share: their height range (fractions of
    the image height), their clothes (None: each their own) and the line
    their hips are on (y and the spread around it, in pixels; None:
    anywhere)."""
    heights: Tuple[float, float]
    clothes: Optional[_Clothes] = None
    hip_line: Optional[Tuple[float, float]] = None

    @classmethod
    def random(cls, rng: np.random.Generator, size: Size,
               settings: dict) -> '_Group':
        """A group as ``settings`` (see :data:`DEFAULT_SETTINGS`) draw it."""
        h = size[1]
        height = rng.uniform(*settings['person_height'])
        spread = settings['height_spread']
        clothes = _Clothes.random(rng) if settings['same_clothes'] else None
        hip_line = None
        if settings['hip_line_spread'] is not None:
            # hips about mid-height of the person: the group fits the image
            margin = 0.45 * height * h
            hip_line = (rng.uniform(margin, h - margin),
                        settings['hip_line_spread'] * h)
        return cls((height * (1 - spread), height * (1 + spread)), clothes,
                   hip_line)

    def place(self, rng: np.random.Generator, size: Size) -> '_Person':
        """One member, placed in the image."""
        return _place_person(rng, size, self.heights, self.clothes
                             or _Clothes.random(rng), hip_line=self.hip_line)


def _place_person(rng: np.random.Generator,
                  size: Size,
                  height_range: Tuple[float, float],
                  clothes: _Clothes,
                  centre: Optional[np.ndarray] = None,
                  hip_line: Optional[Tuple[float, float]] = None) -> _Person:
    """A random pose, scaled (``height_range``: fractions of the image
    height), slightly rotated and placed in the image: its hips at
    ``centre``, or anywhere with the person mostly inside the image (on
    ``hip_line`` (y, spread) if given)."""
    w, h = size
    height = rng.uniform(*height_range) * h
    pose = sample_pose(rng) @ _rotation(np.deg2rad(rng.normal(0, 10))).T
    keypoints = pose * height
    if centre is None:
        lo = keypoints.min(0)
        hi = keypoints.max(0)
        # mostly inside the image; sometimes cut by its border
        slack = 0.1 * height
        centre = rng.uniform(-lo - slack, np.array([w, h]) - hi + slack)
        if hip_line is not None:
            y, spread = hip_line
            centre[1] = y + rng.uniform(-spread, spread)
    return _Person(keypoints + centre, height, clothes)


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of the keypoint boxes of two (17, 2) arrays."""
    lo = np.maximum(a.min(0), b.min(0))
    hi = np.minimum(a.max(0), b.max(0))
    inter = np.prod(np.clip(hi - lo, 0, None))
    area = np.prod(np.ptp(a, 0)) + np.prod(np.ptp(b, 0))
    return float(inter / max(area - inter, 1e-6))


def _place_apart(rng: np.random.Generator, size: Size, group: _Group,
                 others: List[_Person], max_overlap: float,
                 tries: int = 10) -> _Person:
    """A member of ``group`` overlapping each of ``others`` by at most
    ``max_overlap`` (IoU of keypoint boxes); the least overlapping of
    ``tries`` draws if none fits. People still touch and cross limbs, so
    grouping matters, without most images being a tangle."""
    best, best_overlap = None, np.inf
    for _ in range(tries):
        person = group.place(rng, size)
        overlap = max((_box_iou(person.keypoints, o.keypoints)
                       for o in others), default=0.0)
        if overlap <= max_overlap:
            return person
        if overlap < best_overlap:
            best, best_overlap = person, overlap
    return best


def _draw_crowd(rng: np.random.Generator, img: np.ndarray,
                size: Size) -> np.ndarray:
    """A tight group of many small figures; returns its (h, w) uint8 mask."""
    w, h = size
    mask = np.zeros((h, w), np.uint8)
    box_w, box_h = rng.uniform(0.25, 0.45) * w, rng.uniform(0.12, 0.2) * h
    x0 = rng.uniform(0, w - box_w)
    y0 = rng.uniform(0, h - box_h)
    for _ in range(rng.integers(8, 15)):
        centre = np.array([x0 + rng.uniform(0, box_w),
                           y0 + rng.uniform(0, box_h)])
        person = _place_person(rng, size, (0.1, 0.16),
                               _Clothes.random(rng), centre)
        person.draw(img, mask)
    return mask > 127


def _mask_annotation(mask: np.ndarray) -> Optional[dict]:
    """bbox, area and polygon segmentation of a (h, w) 0/1 mask, or None
    if it has no usable outline."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polygons = [c.reshape(-1).astype(float).tolist() for c in contours
                if len(c) >= 3]
    if not polygons:
        return None
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return dict(
        segmentation=polygons,
        bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
        area=float(mask.sum()))


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE (column-major run lengths, starting with 0s),
    the format COCO uses for crowd regions."""
    flat = mask.astype(np.uint8).reshape(-1, order='F')
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0] + counts
    return dict(counts=counts, size=list(mask.shape))


def _draw_occluder(rng: np.random.Generator, img: np.ndarray,
                   person: _Person) -> np.ndarray:
    """A textured box over part of ``person`` (its lower or one side's
    half); returns the box's (h, w) 0/1 mask."""
    h, w = img.shape[:2]
    lo, hi = person.keypoints.min(0), person.keypoints.max(0)
    span = hi - lo
    if rng.random() < 0.5:  # lower body behind a low wall / table
        top = lo[1] + span[1] * rng.uniform(0.55, 0.75)
        box = [lo[0] - 0.2 * span[0], top, hi[0] + 0.2 * span[0],
               hi[1] + 0.1 * span[1]]
    else:  # one side behind a pillar
        x = lo[0] + span[0] * rng.uniform(0.6, 0.8)
        box = [x, lo[1] - 0.1 * span[1], x + span[0] * rng.uniform(0.3, 0.6),
               hi[1] + 0.1 * span[1]]
        if rng.random() < 0.5:  # the other side
            box[0], box[2] = 2 * lo[0] + span[0] - box[2], \
                2 * lo[0] + span[0] - box[0]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    mask = np.zeros((h, w), np.uint8)
    cv2.rectangle(mask, (x0, y0), (x1, y1), 1, -1)
    patch = textured_background(rng, (w, h))
    patch = cv2.addWeighted(patch, 0.7, np.full_like(patch, 90), 0.3, 0)
    img[mask > 0] = patch[mask > 0]
    cv2.rectangle(img, (x0, y0), (x1, y1), (20, 20, 20), 1)
    return mask


def _render_image(rng: np.random.Generator, image_id: int,
                  settings: dict) -> Tuple[np.ndarray, List[dict]]:
    """One image (BGR) and its annotations (without ids)."""
    size = tuple(settings['image_size'])
    w, h = size
    img = textured_background(rng, size)
    annotations = []
    if rng.random() < settings['crowd_prob']:
        crowd = _draw_crowd(rng, img, size)
        annotations.append(
            dict(_mask_annotation(crowd), segmentation=_uncompressed_rle(
                crowd > 0), iscrowd=1, num_keypoints=0,
                 keypoints=[0] * (3 * NUM_KEYPOINTS)))
    lo, hi = settings['people_per_image']
    group = _Group.random(rng, size, settings)
    people = []
    for _ in range(rng.integers(lo, hi + 1)):
        people.append(
            _place_apart(rng, size, group, people, settings['max_overlap']))
    masks = []
    for person in people:
        mask = np.zeros((h, w), np.uint8)
        person.draw(img, mask)
        masks.append(mask > 127)
    occluded = np.zeros((h, w), bool)
    hidden_by_object = [np.zeros((h, w), bool) for _ in people]
    if people and rng.random() < settings['occluder_prob']:
        target = rng.integers(len(people))
        box = _draw_occluder(rng, img, people[target]) > 0
        for hidden in hidden_by_object:
            hidden |= box
        occluded |= box
    # later people are in front: whatever they cover of earlier ones is
    # hidden, and an occluding box hides everything under it
    front = occluded.copy()
    for person, mask, hidden in reversed(
            list(zip(people, masks, hidden_by_object))):
        visible_mask = mask & ~front
        annotation = _person_annotation(person, visible_mask, front, hidden,
                                        size, settings['min_area'])
        if annotation is not None:
            annotations.append(annotation)
        front |= mask
    for ann in annotations:
        ann.update(image_id=image_id, category_id=1)
    return img, annotations


def _person_annotation(person: _Person, visible_mask: np.ndarray,
                       covered: np.ndarray, hidden: np.ndarray, size: Size,
                       min_area: float) -> Optional[dict]:
    """COCO annotation of one person, or None if nothing of it shows.

    A person showing less than ``min_area`` pixels gets no keypoints: like
    COCO's small unannotated people it is then a masked-out region in
    training and ignored by the evaluation.
    """
    outline = _mask_annotation(visible_mask)
    if outline is None:
        return None
    if outline['area'] < min_area:
        return dict(outline, iscrowd=0, num_keypoints=0,
                    keypoints=[0] * (3 * NUM_KEYPOINTS))
    w, h = size
    xy = person.keypoints
    ix = np.clip(np.floor(xy).astype(int), 0, [w - 1, h - 1])
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (
        xy[:, 1] < h)
    behind_object = hidden[ix[:, 1], ix[:, 0]]
    behind_person = covered[ix[:, 1], ix[:, 0]] & ~behind_object
    visibility = np.where(behind_person, 1, 2)
    visibility[~inside | behind_object] = 0
    flat = np.concatenate([xy, visibility[:, None]], axis=1)
    flat[visibility == 0, :2] = 0
    return dict(
        outline,
        iscrowd=0,
        num_keypoints=int((visibility > 0).sum()),
        keypoints=[round(float(v), 2) for v in flat.reshape(-1)])


def make_synthetic_coco(out_dir: Union[str, Path],
                        num_images: int = 24,
                        seed: int = 0,
                        split: str = 'train',
                        **settings) -> Path:
    """Write ``<split>/*.jpg`` and ``annotations/person_keypoints_<split>.json``
    (COCO keypoints) under ``out_dir``.

    Args:
        out_dir: folder to write into (created if needed).
        num_images: number of images.
        seed: random seed; each split draws from its own stream of it, so
            ``train`` and ``val`` of one seed differ and each is reproducible.
        split: name of the split (``train``, ``val``, ...).
        **settings: override :data:`DEFAULT_SETTINGS` (``image_size`` (w, h),
            ``people_per_image`` (min, max), ``person_height`` (min, max) as
            fractions of the image height, ``height_spread``,
            ``hip_line_spread``, ``same_clothes``, ``max_overlap``,
            ``min_area``, ``crowd_prob``, ``occluder_prob``).

    Returns:
        Path: the annotation file. An existing file written with the same
        arguments is kept as it is (the set is not drawn again).
    """
    unknown = set(settings) - set(DEFAULT_SETTINGS)
    if unknown:
        raise TypeError(f'make_synthetic_coco: unknown settings {unknown}; '
                        f'known: {sorted(DEFAULT_SETTINGS)}')
    settings = {**DEFAULT_SETTINGS, **settings}
    out_dir = Path(out_dir)
    ann_file = out_dir / 'annotations' / f'person_keypoints_{split}.json'
    info = dict(
        description='higherhrnet_plugin synthetic people',
        version=GENERATOR_VERSION,
        split=split,
        seed=seed,
        num_images=num_images,
        **{k: list(v) if isinstance(v, tuple) else v
           for k, v in settings.items()})
    if _written_with(ann_file, info, out_dir / split):
        return ann_file
    (out_dir / split).mkdir(parents=True, exist_ok=True)
    ann_file.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, _split_stream(split)])
    w, h = settings['image_size']
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        img, anns = _render_image(rng, image_id, settings)
        for ann in anns:
            ann['id'] = len(annotations) + 1
            annotations.append(ann)
        name = f'{image_id:06d}.jpg'
        cv2.imwrite(str(out_dir / split / name), img,
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        images.append(dict(id=image_id, file_name=name, width=w, height=h))
    ann_file.write_text(
        json.dumps(
            dict(info=info, images=images, annotations=annotations,
                 categories=[coco_person_category()])))
    return ann_file


def _split_stream(split: str) -> int:
    """A stable integer per split name (Python's ``hash`` is salted)."""
    return int.from_bytes(split.encode(), 'little') % (2**32)


def _written_with(ann_file: Path, info: dict, image_dir: Path) -> bool:
    if not ann_file.is_file():
        return False
    try:
        data = json.loads(ann_file.read_text())
    except ValueError:
        return False
    return data.get('info') == info and all(
        (image_dir / img['file_name']).is_file() for img in data['images'])


def make_synthetic_coco_splits(out_dir: Union[str, Path],
                               num_train: int,
                               num_val: int,
                               seed: int = 0,
                               **settings) -> Dict[str, Tuple[Path, Path]]:
    """The train and val splits of one seed (see :func:`make_synthetic_coco`).

    Returns:
        dict: ``{'train': (ann_file, image_dir), 'val': (...)}``.
    """
    out_dir = Path(out_dir)
    return {
        split: (make_synthetic_coco(out_dir, n, seed, split, **settings),
                out_dir / split)
        for split, n in (('train', num_train), ('val', num_val))
    }
