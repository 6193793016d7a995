#!/usr/bin/env python
"""Draw HigherHRNet predictions on images, folders of images and videos.

Usage::

    python tools/demo.py CONFIG CHECKPOINT INPUT --out DIR [--device cpu]
        [--kpt-thr 0.3] [--heatmap] [--flip | --no-flip] [--fuse-conv-bn]
        [--save-frames]
        [--max-vis-side 4096] [--cfg-options KEY=VALUE ...]

INPUT is an image, a folder of images and videos (not searched
recursively), or a video. Results go to DIR: an image keeps its file name
(a format OpenCV cannot write, e.g. GIF, becomes ``<name>.png``); a video
becomes ``<stem>.mp4`` (and, with ``--save-frames``, ``<stem>_frames/`` with
one JPEG per frame). ``--heatmap`` adds the aggregated heatmap (maximum over
the keypoints), mapped back onto the image, below the drawing.

CHECKPOINT is a checkpoint of this plugin (converted or trained with MMPose
1.x); an official or MMPose 0.x HigherHRNet checkpoint is converted on the
fly. Its weights must match the config's model exactly: a checkpoint of
another model or a damaged file stops the demo with a message naming it.

A file that cannot be read (missing, empty, truncated, corrupt, not an
image) is reported with the reason and skipped; the others are processed.
The summary at the end counts processed and skipped inputs and the people
found (predicted people with at least one keypoint score >= --kpt-thr).

Exit status: 0 if at least one input was processed, 1 if nothing could be
processed (or the config / checkpoint is unusable), 2 on bad arguments.
See docs/demo.md.
"""
import argparse
import os
import os.path as osp
import sys
import warnings
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                    '.ppm', '.pgm', '.pbm', '.gif', '.jp2')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg',
                    '.mpeg', '.wmv', '.flv')

PROG = 'demo'


class DemoError(Exception):
    """A problem that stops the demo (bad config, checkpoint or input)."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='HigherHRNet bottom-up pose estimation on an image, a '
        'folder of images or a video; draws skeletons into --out.')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('input', help='image, folder of images, or video')
    parser.add_argument(
        '--out', required=True, help='output folder (created if needed)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--kpt-thr',
        type=float,
        default=0.3,
        help='draw keypoints whose score is at least this (default 0.3)')
    parser.add_argument(
        '--heatmap',
        action='store_true',
        help='also draw the aggregated heatmap, mapped onto the image')
    parser.add_argument(
        '--flip',
        action=argparse.BooleanOptionalAction,
        default=None,
        help='flip test on / off (default: as in the config)')
    parser.add_argument(
        '--fuse-conv-bn',
        action='store_true',
        help='fold BatchNorm into the convolutions (faster, same results '
        'to float rounding)')
    parser.add_argument(
        '--save-frames',
        action='store_true',
        help='for videos, also write every drawn frame as a JPEG')
    parser.add_argument(
        '--max-vis-side',
        type=int,
        default=4096,
        help='downscale drawings whose longer side exceeds this (keeps '
        'memory and file size sane for huge images; 0: never). Inference '
        'always sees the full image. Default 4096')
    parser.add_argument(
        '--radius', type=int, default=3, help='keypoint radius')
    parser.add_argument(
        '--thickness', type=int, default=1, help='skeleton line width')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=None,
        metavar='KEY=VALUE',
        help='override config settings, as in MMPose\'s tools')
    parser.add_argument(
        '--debug',
        action='store_true',
        help='show full tracebacks instead of one-line reports')
    return parser.parse_args(argv)


@dataclass
class Summary:
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


def _report(message: str) -> None:
    """A message that does not break the progress bar."""
    try:
        from tqdm import tqdm
        tqdm.write(message, file=sys.stderr)
    except ImportError:
        print(message, file=sys.stderr)


def _first_line(err: BaseException) -> str:
    text = (str(err).strip().splitlines() or [''])[0]
    return f'{type(err).__name__}: {text}' if text else type(err).__name__


def collect_inputs(path: str, summary: Summary) -> List[Tuple[str, str]]:
    """(file, 'image' | 'video') pairs to process."""
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


def load_model(args):
    """The model with the checkpoint's weights, loaded strictly (MMPose's
    init_model only warns about a checkpoint of another model)."""
    from mmengine.config import DictAction

    from higherhrnet_plugin.apis import CheckpointError, init_model

    if not osp.isfile(args.config):
        raise DemoError(f'{args.config}: config file not found')
    cfg_options = None
    if args.cfg_options:
        action = DictAction(option_strings=[], dest='cfg_options')
        namespace = argparse.Namespace()
        action(None, namespace, args.cfg_options)
        cfg_options = namespace.cfg_options
    try:
        model = init_model(args.config, args.checkpoint, device=args.device,
                           cfg_options=cfg_options)
    except CheckpointError as err:
        raise DemoError(str(err)) from err
    except Exception as err:
        raise DemoError(f'{args.config}: cannot build the model '
                        f'({_first_line(err)})') from err
    if args.fuse_conv_bn:
        from higherhrnet_plugin.apis import fuse_conv_bn
        fuse_conv_bn(model)
    if args.flip is not None:
        model.test_cfg['flip_test'] = args.flip
    if args.heatmap:
        model.test_cfg['output_heatmaps'] = True
    return model


def build_visualizer(model, args):
    from mmpose.registry import VISUALIZERS
    cfg = model.cfg.visualizer.copy()
    visualizer = VISUALIZERS.build(cfg)
    visualizer.set_dataset_meta(model.dataset_meta)
    visualizer.radius = args.radius
    visualizer.line_width = args.thickness
    return visualizer


def draw(visualizer, image_bgr, sample, args):
    """Skeletons (and the heatmap) on the image; returns a BGR drawing."""
    import cv2
    import numpy as np
    from mmengine.structures import InstanceData, PixelData
    from mmpose.structures import PoseDataSample

    h, w = image_bgr.shape[:2]
    factor = 1.0
    if args.max_vis_side and max(h, w) > args.max_vis_side:
        factor = args.max_vis_side / max(h, w)
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        image_bgr = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
    pred = sample.pred_instances
    vis_sample = PoseDataSample(metainfo=sample.metainfo)
    vis_sample.pred_instances = InstanceData(
        keypoints=np.asarray(pred.keypoints) * factor,
        keypoint_scores=np.asarray(pred.keypoint_scores),
        keypoints_visible=np.asarray(
            pred.get('keypoints_visible', pred.keypoint_scores)))
    draw_heatmap = args.heatmap and 'pred_fields' in sample
    if draw_heatmap:
        # the model's heatmaps cover the image (see heatmaps_to_image); the
        # visualiser resizes them onto the drawing
        vis_sample.pred_fields = PixelData(
            heatmaps=sample.pred_fields.heatmaps.max(dim=0,
                                                     keepdim=True)[0])
    drawn = visualizer.add_datasample(
        'result',
        np.ascontiguousarray(image_bgr[..., ::-1]),
        data_sample=vis_sample,
        draw_gt=False,
        draw_pred=True,
        draw_heatmap=draw_heatmap,
        draw_bbox=False,
        show=False,
        kpt_thr=args.kpt_thr)
    return np.ascontiguousarray(drawn[..., ::-1])


def count_people(sample, kpt_thr: float) -> int:
    import numpy as np
    scores = np.asarray(sample.pred_instances.keypoint_scores)
    if scores.size == 0:
        return 0
    return int((scores.max(axis=1) >= kpt_thr).sum())


def write_image(path: str, image) -> str:
    import cv2
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    try:
        ok = cv2.imwrite(path, image)
    except cv2.error:
        ok = False
    if not ok:  # e.g. GIF: OpenCV has no writer for it
        path = path + '.png'
        if not cv2.imwrite(path, image):
            raise OSError(f'cannot write {path}')
    return path


def process_image(path, model, visualizer, args, summary):
    from mmpose.apis import inference_bottomup

    from higherhrnet_plugin.datasets.transforms import read_image
    out = osp.join(args.out, osp.basename(path))
    if osp.realpath(out) == osp.realpath(path):
        raise DemoError('the drawing would overwrite the input; choose '
                        'another --out folder')
    image = read_image(path)  # ImageLoadError names the file and reason
    sample = inference_bottomup(model, image)[0]
    drawn = draw(visualizer, image, sample, args)
    out = write_image(out, drawn)
    summary.images += 1
    summary.people += count_people(sample, args.kpt_thr)
    summary.outputs.append(out)


def process_video(path, model, visualizer, args, summary, progress):
    import cv2
    from mmpose.apis import inference_bottomup

    from higherhrnet_plugin.datasets.transforms import normalize_image
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
    out_path = osp.join(args.out, stem + '.mp4')
    if osp.abspath(out_path) == osp.abspath(path):
        out_path = osp.join(args.out, stem + '_pose.mp4')
    frames_dir = osp.join(args.out, stem + '_frames')
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and 0 < fps < 1000 else 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    bar = progress(total=total if total > 0 else None, desc=stem,
                   unit='frame')
    writer = None
    frames = people = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frame = normalize_image(frame)
            sample = inference_bottomup(model, frame)[0]
            drawn = draw(visualizer, frame, sample, args)
            if writer is None:
                os.makedirs(args.out, exist_ok=True)
                writer = cv2.VideoWriter(out_path,
                                         cv2.VideoWriter_fourcc(*'mp4v'),
                                         fps,
                                         (drawn.shape[1], drawn.shape[0]))
                if not writer.isOpened():
                    raise DemoError(f'cannot write the video {out_path}')
            writer.write(drawn)
            if args.save_frames:
                write_image(osp.join(frames_dir, f'{frames:06d}.jpg'), drawn)
            frames += 1
            people += count_people(sample, args.kpt_thr)
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


def _progress_factory():
    try:
        from tqdm import tqdm

        def progress(total=None, desc=None, unit='it'):
            return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr,
                        dynamic_ncols=True, leave=False)
    except ImportError:  # pragma: no cover - tqdm is a runtime dependency
        from mmengine.utils import ProgressBar

        class _Bar:

            def __init__(self, total=None, **kwargs):
                self.bar = ProgressBar(total or 0, file=sys.stderr)

            def update(self, n=1):
                for _ in range(n):
                    self.bar.update()

            def close(self):
                self.bar.file.write('\n')

        def progress(total=None, desc=None, unit='it'):
            return _Bar(total)

    return progress


def main(argv=None) -> int:
    args = parse_args(argv)
    summary = Summary()
    try:
        with warnings.catch_warnings():
            # MMPose / MMEngine deprecation notices would drown the report.
            warnings.simplefilter('ignore')
            import higherhrnet_plugin  # noqa: F401  (registers modules)
            from higherhrnet_plugin.datasets.transforms import ImageLoadError

            inputs = collect_inputs(args.input, summary)
            model = load_model(args)
            visualizer = build_visualizer(model, args)
            os.makedirs(args.out, exist_ok=True)
            progress = _progress_factory()
            several = len(inputs) > 1
            bar = progress(total=len(inputs), desc='inputs', unit='file') \
                if several else None
            for path, kind in inputs:
                name = osp.basename(path) if several else path
                try:
                    if kind == 'video':
                        process_video(path, model, visualizer, args, summary,
                                      progress)
                    else:
                        process_image(path, model, visualizer, args, summary)
                except ImageLoadError as err:
                    summary.skipped.append((name, err.reason))
                    _report(f'skipped {name}: {err.reason}')
                except DemoError as err:
                    summary.skipped.append((name, str(err)))
                    _report(f'skipped {name}: {err}')
                except Exception as err:  # inference failure on this input
                    if args.debug:
                        raise
                    summary.skipped.append((name, _first_line(err)))
                    _report(f'skipped {name}: {_first_line(err)}')
                if bar is not None:
                    bar.update(1)
            if bar is not None:
                bar.close()
    except DemoError as err:
        if args.debug:
            raise
        print(f'{PROG}: error: {err}', file=sys.stderr)
        return 1

    for line in summary.lines():
        print(line)
    if summary.outputs:
        print(f'results in: {args.out}')
    if summary.processed == 0:
        print(f'{PROG}: error: nothing could be processed', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
