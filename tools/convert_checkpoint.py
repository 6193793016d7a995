"""Convert an official or MMPose 0.x HigherHRNet checkpoint for this plugin.

Usage::

    python tools/convert_checkpoint.py SRC DST [--config CONFIG]
        [--layout {auto,official,mmpose0x,mmpose1x}] [--trust-source]

With ``--config`` the config's model is built and the converted weights must
load into it with ``strict=True``; otherwise every missing, unexpected or
mis-shaped key is reported. DST holds ``{'state_dict': ..., 'meta': ...}``
and can be passed to ``mim test mmpose CONFIG --checkpoint DST`` or
``mmpose.apis.init_model(CONFIG, DST)``. See docs/converting_checkpoints.md.

Exit status: 0 on success, 1 on a conversion error (one-line message on
stderr), 2 on bad command-line arguments.
"""
import argparse
import os.path as osp
import sys
import warnings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert an official / MMPose 0.x HigherHRNet checkpoint '
        'to the MMPose 1.x layout of higherhrnet_plugin.')
    parser.add_argument('src', help='source checkpoint file')
    parser.add_argument('dst', help='output checkpoint file')
    parser.add_argument(
        '--config',
        help='plugin config whose model the converted weights must load '
        'into (strict); strongly recommended')
    parser.add_argument(
        '--layout',
        default='auto',
        choices=['auto', 'official', 'mmpose0x', 'mmpose1x'],
        help='source key layout (default: detected from the keys)')
    parser.add_argument(
        '--trust-source',
        action='store_true',
        help='if the file cannot be read with torch.load(weights_only=True), '
        'unpickle it fully. This can run arbitrary code: only for files from '
        'a source you trust')
    parser.add_argument('--debug',
                        action='store_true',
                        help='show the full traceback of unexpected errors')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    prog = osp.basename(sys.argv[0]) if argv is None else 'convert_checkpoint'
    try:
        # Library warnings (e.g. MMPose's deprecation notices) would drown
        # the summary; errors are reported below.
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            import higherhrnet_plugin  # noqa: F401  (registers modules)
            from higherhrnet_plugin.checkpoint_conversion import (
                CheckpointConversionError, convert_checkpoint,
                save_converted_checkpoint)
            from higherhrnet_plugin.utils import run_cli
    except Exception as err:
        if args.debug:
            raise
        print(
            f'{prog}: error: cannot import higherhrnet_plugin '
            f'({type(err).__name__}: {err})',
            file=sys.stderr)
        return 1

    def convert():
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            result = convert_checkpoint(
                args.src,
                config=args.config,
                layout=None if args.layout == 'auto' else args.layout,
                trust_source=args.trust_source)
            dst = save_converted_checkpoint(result, args.dst)
        print(f'source:  {args.src} (layout: {result.layout})')
        print(f'tensors: {result.num_tensors}')
        if result.config:
            print('check:   loads strictly into the model of '
                  f'{result.config}')
        else:
            print('check:   skipped (pass --config to check the weights '
                  'against a model)')
        if result.filled_keys:
            print(f'filled:  {len(result.filled_keys)} BatchNorm '
                  'num_batches_tracked counters absent from the source '
                  '(set to 0)')
        print(f'saved:   {dst}')

    return run_cli(prog, convert, args.debug, (CheckpointConversionError, ),
                   context=f'{args.src}: ')


if __name__ == '__main__':
    sys.exit(main())
