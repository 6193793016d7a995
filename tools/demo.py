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
The work is done by ``higherhrnet_plugin.apis.demo``; see docs/demo.md.
"""
import argparse
import sys
import warnings

from mmengine.config import DictAction

PROG = 'demo'


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
        action=DictAction,
        metavar='KEY=VALUE',
        help='override config settings, as in MMPose\'s tools')
    parser.add_argument(
        '--debug',
        action='store_true',
        help='show full tracebacks instead of one-line reports')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    with warnings.catch_warnings():
        # MMPose / MMEngine deprecation notices would drown the report.
        warnings.simplefilter('ignore')
        from higherhrnet_plugin.apis import CheckpointError
        from higherhrnet_plugin.apis.demo import (BottomupDemo, DemoError,
                                                  DemoSummary, collect_inputs,
                                                  init_demo_model)
        from higherhrnet_plugin.utils import run_cli

        summary = DemoSummary()

        def run():
            inputs = collect_inputs(args.input, summary)
            model = init_demo_model(
                args.config, args.checkpoint, args.device, args.cfg_options,
                fuse_conv_bn=args.fuse_conv_bn, flip_test=args.flip)
            demo = BottomupDemo(
                model, args.out, args.kpt_thr, draw_heatmap=args.heatmap,
                save_frames=args.save_frames, max_vis_side=args.max_vis_side,
                radius=args.radius, thickness=args.thickness)
            demo.run(inputs, summary, debug=args.debug)

        code = run_cli(PROG, run, args.debug, (DemoError, CheckpointError))
    if code:
        return code
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
