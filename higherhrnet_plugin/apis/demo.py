"""The demo of ``tools/demo.py``: a model's predictions drawn on images,
folders of images and videos, written to a folder.

Bad input does not stop it: a file that cannot be read or run is reported
(one line on stderr, as it happens) and counted in the
:class:`DemoSummary`; the other inputs are processed. Only a problem that
leaves nothing to do (the config, the checkpoint, the input path) raises
:class:`DemoError` or :class:`~.checkpoint.CheckpointError`. See
docs/demo.md.
"""
import os
import os.path as osp
import sys
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from mmpose.apis import inference_bottomup
from mmpose.structures import PoseDataSample

from ..datasets.transforms import ImageLoadError, normalize_image, read_image
from ..models.fuse_conv_bn import fuse_conv_bn as fold_batch_norm
from ..utils import describe_error
from .checkpoint import CheckpointError
from .model import init_model
from .visualization import build_visualizer, draw_prediction

__all__ = [
    'IMAGE_EXTENSIONS', 'VIDEO_EXTENSIONS', 'BottomupDemo', 'DemoError',
    'DemoSummary', 'collect_inputs', 'count_people', 'init_demo_model',
    'write_image'
]

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                    '.ppm', '.pgm', '.pbm', '.gif', '.jp2')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg',
                    '.mpeg', '.wmv', '.flv')


class DemoError(Exception):
    """A problem with the config, the input or an output: the message names
    the file and the problem."""


@dataclass
class DemoSummary:
    """What the demo did: processed, skipped and ignored inputs, people
    found, files written."""
    images: int = 0
    videos: int = 0
    frames: int = 0
    people: int = 0
    skipped: List[Tuple[str, str]] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.images + self.videos

    def lines(self) -> List[str]:
        lines = [
            f'processed: {self.processed} ({self.images} images, '
            f'{self.videos} videos with {self.frames} frames)',
            f'skipped:   {len(self.skipped)}'
        ]
        lines += [f'  - {name}: {reason}' for name, reason in self.skipped]
        if self.ignored:
            lines.append(f'ignored:   {len(self.ignored)} files that are '
                         'neither images nor videos (by extension)')
        lines.append(f'people found: {self.people}')
        return lines


def collect_inputs(path: str, summary: DemoSummary) -> List[Tuple[str, str]]:
    """The inputs at ``path`` as (file, ``'image'`` | ``'video'``) pairs.

    A folder's images and videos, by extension and in name order (not
    searched recursively; other files are added to ``summary.ignored``), or
    the file itself (a video by its extension, else an image).

    Raises:
        DemoError: if ``path`` does not exist, or is a folder without
            images or videos.
    """
    if osp.isdir(path):
        entries = []
        for name in sorted(os.listdir(path)):
            full = osp.join(path, name)
            ext = osp.splitext(name)[1].lower()
            if osp.isdir(full) and ext not in IMAGE_EXTENSIONS:
                continue  # sub-folders are not searched
            if ext in VIDEO_EXTENSIONS:
                entries.append((full, 'video'))
            elif ext in IMAGE_EXTENSIONS:
                entries.append((full, 'image'))
            else:
                summary.ignored.append(full)
        if not entries:
            raise DemoError(f'{path}: no image or video files in this '
                            'folder')
        return entries
    ext = osp.splitext(path)[1].lower()
    if not osp.lexists(path):
        raise DemoError(f'{path}: no such file or folder')
    return [(path, 'video' if ext in VIDEO_EXTENSIONS else 'image')]


def init_demo_model(config: str,
                    checkpoint: str,
                    device: str = 'cpu',
                    cfg_options: Optional[dict] = None,
                    fuse_conv_bn: bool = False,
                    flip_test: Optional[bool] = None):
    """The model with the checkpoint's weights, loaded strictly
    (:func:`~.model.init_model`: MMPose's only warns about a checkpoint of
    another model).

    Args:
        config (str): the config file.
        checkpoint (str): the weights (an official or MMPose 0.x HigherHRNet
            checkpoint is converted in memory).
        device (str): e.g. ``'cpu'``, ``'cuda:0'``.
        cfg_options (dict, optional): config overrides.
        fuse_conv_bn (bool): fold BatchNorm into the convolutions.
        flip_test (bool, optional): set ``test_cfg.flip_test`` (None: as in
            the config).

    Raises:
        DemoError: the config is missing or its model cannot be built.
        CheckpointError: the checkpoint cannot be read or does not match.
    """
    if not osp.isfile(config):
        raise DemoError(f'{config}: config file not found')
    try:
        model = init_model(config, checkpoint, device=device,
                           cfg_options=cfg_options)
    except CheckpointError:
        raise
    except Exception as err:
        raise DemoError(f'{config}: cannot build the model '
                        f'({describe_error(err)})') from err
    if fuse_conv_bn:
        fold_batch_norm(model)
    if flip_test is not None:
        model.test_cfg['flip_test'] = flip_test
    return model


def count_people(sample: PoseDataSample, kpt_thr: float) -> int:
    """Predicted people with at least one keypoint scoring ``kpt_thr``."""
    scores = np.asarray(sample.pred_instances.keypoint_scores)
    if scores.size == 0:
        return 0
    return int((scores.max(axis=1) >= kpt_thr).sum())


def write_image(path: str, image: np.ndarray) -> str:
    """Write ``image`` to ``path``, or to ``path + '.png'`` if OpenCV has
    no writer for the format (e.g. GIF); returns the path written."""
    import cv2
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    try:
        ok = cv2.imwrite(path, image)
    except cv2.error:
        ok = False
    if not ok:
        path = path + '.png'
        if not cv2.imwrite(path, image):
            raise OSError(f'cannot write {path}')
    return path


def _report(message: str) -> None:
    """A message on stderr that does not break the progress bars."""
    tqdm.write(message, file=sys.stderr)


def _progress(total: Optional[int], desc: str, unit: str) -> tqdm:
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr,
                dynamic_ncols=True, leave=False)


class BottomupDemo:
    """Draws a bottom-up model's predictions on images and videos and
    writes the drawings to ``out_dir``.

    An image keeps its file name (``<name>.png`` appended where OpenCV
    cannot write the format); a video becomes ``<stem>.mp4`` (``mp4v``, the
    source frame rate, 25 if unknown) and, with ``save_frames``,
    ``<stem>_frames/000000.jpg ...``. The demo never overwrites its input.

    Args:
        model: a pose estimator, e.g. from :func:`init_demo_model`.
        out_dir (str): the output folder (created when the first drawing is
            written).
        kpt_thr (float): keypoints scoring below are not drawn, and a
            person counts as found with one keypoint at least this score.
        draw_heatmap (bool): also draw the heatmaps (maximum over the
            keypoints) mapped onto the image, below the skeletons; sets
            ``test_cfg.output_heatmaps``.
        save_frames (bool): for videos, also write every drawing as a JPEG.
        max_vis_side (int): draw on a downscaled copy of images whose longer
            side exceeds this (0: never); inference sees the full image.
        radius (int): keypoint radius.
        thickness (int): skeleton line width.
    """

    def __init__(self,
                 model,
                 out_dir: str,
                 kpt_thr: float = 0.3,
                 draw_heatmap: bool = False,
                 save_frames: bool = False,
                 max_vis_side: int = 4096,
                 radius: int = 3,
                 thickness: int = 1):
        self.model = model
        self.out_dir = out_dir
        self.kpt_thr = kpt_thr
        self.draw_heatmap = draw_heatmap
        self.save_frames = save_frames
        self.max_vis_side = max_vis_side
        if draw_heatmap:
            model.test_cfg['output_heatmaps'] = True
        self.visualizer = build_visualizer(model, radius, thickness)

    def run(self,
            inputs: List[Tuple[str, str]],
            summary: Optional[DemoSummary] = None,
            debug: bool = False) -> DemoSummary:
        """Process ``inputs`` (from :func:`collect_inputs`), with progress
        bars on stderr. An input that fails is skipped: reported on stderr
        and listed in the summary.

        Args:
            inputs (list): (file, kind) pairs.
            summary (DemoSummary, optional): added to (default: a new one).
            debug (bool): re-raise unexpected errors instead of skipping.
        """
        summary = DemoSummary() if summary is None else summary
        os.makedirs(self.out_dir, exist_ok=True)
        several = len(inputs) > 1
        bar = _progress(len(inputs), 'inputs', 'file') if several else None
        for path, kind in inputs:
            name = osp.basename(path) if several else path
            try:
                if kind == 'video':
                    self.process_video(path, summary)
                else:
                    self.process_image(path, summary)
            except ImageLoadError as err:
                self._skip(summary, name, err.reason)
            except DemoError as err:
                self._skip(summary, name, str(err))
            except Exception as err:  # inference failure on this input
                if debug:
                    raise
                self._skip(summary, name, describe_error(err))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return summary

    @staticmethod
    def _skip(summary: DemoSummary, name: str, reason: str) -> None:
        summary.skipped.append((name, reason))
        _report(f'skipped {name}: {reason}')

    def draw(self, image: np.ndarray, sample: PoseDataSample) -> np.ndarray:
        """The drawing of one prediction, BGR (see :func:`draw_prediction`),
        downscaled to ``max_vis_side``."""
        longer = max(image.shape[:2])
        scale = 1.0
        if self.max_vis_side and longer > self.max_vis_side:
            scale = self.max_vis_side / longer
        return draw_prediction(self.visualizer, image, sample, self.kpt_thr,
                               scale, self.draw_heatmap)

    def process_image(self, path: str, summary: DemoSummary) -> None:
        """Predict, draw and write one image file.

        Raises:
            ImageLoadError: the file cannot be read (the reason names why).
            DemoError: the drawing would overwrite the input.
        """
        out = osp.join(self.out_dir, osp.basename(path))
        if osp.realpath(out) == osp.realpath(path):
            raise DemoError('the drawing would overwrite the input; choose '
                            'another --out folder')
        image = read_image(path)
        sample = inference_bottomup(self.model, image)[0]
        out = write_image(out, self.draw(image, sample))
        summary.images += 1
        summary.people += count_people(sample, self.kpt_thr)
        summary.outputs.append(out)

    def process_video(self, path: str, summary: DemoSummary) -> None:
        """Predict and draw every frame of one video, with a progress bar;
        write the drawn video (and frames).

        Raises:
            DemoError: the video cannot be opened or has no readable frame,
                or the output cannot be written.
        """
        import cv2
        if not osp.isfile(path):
            raise DemoError('no such file' if not osp.lexists(path) else
                            'not a regular file')
        if osp.getsize(path) == 0:
            raise DemoError('the file is empty (0 bytes)')
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            raise DemoError('cannot open the video (corrupt, or a format '
                            'OpenCV cannot read)')
        stem = osp.splitext(osp.basename(path))[0]
        out_path = osp.join(self.out_dir, stem + '.mp4')
        if osp.abspath(out_path) == osp.abspath(path):
            out_path = osp.join(self.out_dir, stem + '_pose.mp4')
        frames_dir = osp.join(self.out_dir, stem + '_frames')
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = fps if fps and 0 < fps < 1000 else 25.0
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        bar = _progress(total if total > 0 else None, stem, 'frame')
        writer = None
        frames = people = 0
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                frame = normalize_image(frame)
                sample = inference_bottomup(self.model, frame)[0]
                drawn = self.draw(frame, sample)
                if writer is None:
                    os.makedirs(self.out_dir, exist_ok=True)
                    writer = cv2.VideoWriter(
                        out_path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                        (drawn.shape[1], drawn.shape[0]))
                    if not writer.isOpened():
                        raise DemoError(f'cannot write the video {out_path}')
                writer.write(drawn)
                if self.save_frames:
                    write_image(osp.join(frames_dir, f'{frames:06d}.jpg'),
                                drawn)
                frames += 1
                people += count_people(sample, self.kpt_thr)
                bar.update(1)
        finally:
            bar.close()
            capture.release()
            if writer is not None:
                writer.release()
        if frames == 0:
            raise DemoError('no frame could be read (empty or corrupt video)')
        summary.videos += 1
        summary.frames += frames
        summary.people += people
        summary.outputs.append(out_path)
