"""Compare a config's training targets with the official HigherHRNet's.

Runs the config's train pipeline on the four COCO images of
``../shared/data/coco`` with each augmentation of
``../shared/fixtures/official_train_targets.npz`` (see its README) and prints
a Markdown table, per pipeline variant, of the largest heatmap difference,
the number of differing mask pixels (1/4 and 1/2 resolution together) and
the persons whose tag joints differ (``--per-entry``: one row per entry).
Variants: the config as it is (with the stored official matrix, and with the
matrix it builds itself), the geometric flip (``flip_about='input'``) and
MMPose's ``BottomupRandomAffine`` given the same crop
(``sampling='mmpose'``). Exit status 1 if the config itself does
not reproduce the official targets (heatmaps to 1e-6, masks and tags
exactly).

Example::

    python tools/check_train_targets.py
"""
import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's plugin, not another install
COCO_W32 = (REPO / 'configs' / 'higherhrnet' / 'coco' /
            'higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', type=Path, default=COCO_W32,
                        help='a COCO config with 512 input and 128 / 256 '
                        'outputs (default: HigherHRNet-W32-512)')
    parser.add_argument('--shared', type=Path, default=REPO.parent / 'shared',
                        help='folder with fixtures/ and data/ '
                        '(default: ../shared beside the repository)')
    parser.add_argument('--per-entry', action='store_true',
                        help='one row per fixture entry and pipeline')
    parser.add_argument('--debug', action='store_true',
                        help='show tracebacks')
    return parser.parse_args()


def print_summary(rows, official):
    from higherhrnet_plugin.testing.official_train_targets import VARIANTS
    print('| pipeline | entries | heatmap max diff | mask pixels differing '
          '(of all) | persons with other tag joints |')
    print('|---|---|---|---|---|')
    for variant in VARIANTS:
        for flipped in (False, True):
            group = [(entry, c) for name, entry, c in rows
                     if name == variant
                     and official.case(entry)['flip'] == flipped]
            pixels = sum(sum(res**2 for res in official.resolutions)
                         for _ in group)
            print(f"| {variant} | {len(group)} "
                  f"{'flipped' if flipped else 'unflipped'} | "
                  f'{max(max(c.heatmap_error) for _, c in group):.1e} | '
                  f'{sum(sum(c.mask_mismatches) for _, c in group)} '
                  f'(of {pixels}) | '
                  f'{sum(c.people_with_other_tags for _, c in group)} of '
                  f'{sum(c.people for _, c in group)} |')


def print_entries(rows):
    print('| pipeline | entry | heatmap max diff 128 / 256 | '
          'mask pixels 128 / 256 | persons with other tag joints |')
    print('|---|---|---|---|---|')
    for variant, entry, c in rows:
        print(f'| {variant} | {entry} | {c.heatmap_error[0]:.1e} / '
              f'{c.heatmap_error[1]:.1e} | {c.mask_mismatches[0]} / '
              f'{c.mask_mismatches[1]} | '
              f'{c.people_with_other_tags} of {c.people} |')


def reproduces(comparison) -> bool:
    return (max(comparison.heatmap_error) <= 1e-6
            and not any(comparison.mask_mismatches)
            and comparison.people_with_other_tags == 0)


def main():
    args = parse_args()
    import higherhrnet_plugin  # noqa: F401  (registers the plugin)
    from mmengine.config import Config
    from mmpose.utils import register_all_modules

    from higherhrnet_plugin.testing.official_train_targets import (
        OfficialTrainTargets, compare_config_with_official)
    fixture = args.shared / 'fixtures' / 'official_train_targets.npz'
    coco = args.shared / 'data' / 'coco'
    for path in (fixture, coco / 'test_coco.json'):
        if not path.exists():
            sys.exit(f'check_train_targets: error: {path} not found '
                     '(pass --shared)')
    register_all_modules()
    cfg = Config.fromfile(str(args.config))
    official = OfficialTrainTargets(fixture)
    with tempfile.TemporaryDirectory() as work_dir:
        rows = compare_config_with_official(cfg, official, coco,
                                            Path(work_dir))
    print(f'Config: {args.config}\n')
    if args.per_entry:
        print_entries(rows)
    else:
        print_summary(rows, official)
    failing = [entry for variant, entry, c in rows
               if variant == 'config' and not reproduces(c)]
    print('\nThe config reproduces the official targets: '
          + ('FAIL ' + ', '.join(failing) if failing else 'PASS'))
    return 1 if failing else 0


if __name__ == '__main__':
    from higherhrnet_plugin.utils.cli import run_cli
    outcome = []
    code = run_cli('check_train_targets', lambda: outcome.append(main()),
                   debug='--debug' in sys.argv)
    sys.exit(code or outcome[0])
