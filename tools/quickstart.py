"""Quick start: train a small HigherHRNet for a few minutes on a CPU,
evaluate it with CocoMetric on held-out images, and draw a prediction and the
learning curve (see higherhrnet_plugin/apis/quickstart.py for the data it
picks).

Usage: python tools/quickstart.py [--work-dir DIR] [--data SOURCE]
       [--max-iters N] [--train-images N] [--val-images N] [--verbose]
"""
import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = (REPO / 'configs' / 'higherhrnet' / 'synthetic' /
          'higherhrnet_hrnet-w16-tiny_1xb4-24e_synthetic-256x256.py')


def parse_args():
    from mmengine.config import DictAction
    from higherhrnet_plugin.apis.quickstart import (SOURCES, TRAIN_IMAGES,
                                                    VAL_IMAGES)
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=str(CONFIG))
    parser.add_argument('--work-dir', default='work_dirs/quickstart')
    parser.add_argument(
        '--data', choices=SOURCES, default='auto',
        help='auto: data/coco, else ../shared/data/coco, else synthetic')
    parser.add_argument(
        '--data-dir', default=None,
        help='where synthetic data is generated (default data/synthetic_coco)')
    parser.add_argument('--train-images', type=int, default=TRAIN_IMAGES)
    parser.add_argument('--val-images', type=int, default=VAL_IMAGES)
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the synthetic data')
    parser.add_argument(
        '--max-iters', type=int, default=None,
        help='train for about this many iterations (whole epochs)')
    parser.add_argument('--verbose', action='store_true',
                        help="show MMEngine's log on the console")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides, as in MMPose tools/train.py')
    return parser.parse_args()


def main():
    started = time.time()
    sys.path.insert(0, str(REPO))  # this checkout's plugin, installed or not
    import higherhrnet_plugin  # noqa: F401  (registers the modules)
    from higherhrnet_plugin.apis.quickstart import (format_summary,
                                                    prepare_data,
                                                    run_quickstart)
    args = parse_args()
    work_dir = Path(args.work_dir).resolve()
    print('[quickstart] preparing the data', flush=True)
    data = prepare_data(REPO, work_dir, args.data, args.train_images,
                        args.val_images, args.seed,
                        synthetic_dir=args.data_dir and Path(args.data_dir))
    print(f'[quickstart] data: {data.description} '
          f'({time.time() - started:.0f} s)', flush=True)
    result = run_quickstart(
        Path(args.config), data, work_dir, args.max_iters, args.cfg_options,
        args.verbose, started=started)
    print(format_summary(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
