"""The overfit check (``higherhrnet_plugin.benchmarks.overfit`` and
``tools/overfit_benchmark.py``): its config, its verdict, and a two-epoch
run of the tool on the four shared COCO images."""
import math
import re

import pytest

from .conftest import TINY_CONFIG, load_tool, shared_path


def test_config_has_no_augmentation_and_one_dataset(tmp_path):
    from higherhrnet_plugin.benchmarks.overfit import build_overfit_config
    coco = shared_path('data', 'coco')
    cfg = build_overfit_config(str(TINY_CONFIG), str(coco), str(tmp_path),
                               epochs=3, eval_interval=1,
                               cfg_options={'model.test_cfg.flip_test': True})
    affine = cfg.train_dataloader.dataset.pipeline[1]
    assert affine['input_size'] == (448, 256)
    assert affine['scale_type'] == 'long'
    assert all(affine[f'{name}_prob'] == 0
               for name in ('shift', 'scale', 'rotate', 'shear'))
    assert not any(t['type'] == 'RandomFlip'
                   for t in cfg.train_dataloader.dataset.pipeline)
    target = cfg.train_dataloader.dataset.pipeline[2]['encoder']
    assert target['heatmap_sizes'] == [(112, 64), (224, 128)]
    roots = {cfg[loader].dataset.data_root for loader in
             ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    assert roots == {f'{coco}/'}
    assert cfg.val_evaluator.ann_file == f'{coco}/test_coco.json'
    assert cfg.train_cfg == dict(by_epoch=True, max_epochs=3, val_interval=1)
    assert cfg.model.test_cfg.flip_test is True  # options come last

    square = build_overfit_config(str(TINY_CONFIG), str(coco), str(tmp_path),
                                  square_crop=True)
    assert square.train_dataloader.dataset.pipeline[1]['input_size'] == \
        tuple(square.codec['input_size'])
    with pytest.raises(FileNotFoundError, match='test_coco.json not found'):
        build_overfit_config(str(TINY_CONFIG), str(tmp_path), str(tmp_path))


def _result(first_loss, last_loss, final_ap):
    from higherhrnet_plugin.benchmarks.overfit import (OverfitRecorder,
                                                       OverfitResult)
    recorder = OverfitRecorder(console=None)
    recorder.losses = {1: {'loss': first_loss}, 2: {'loss': last_loss}}
    recorder.first_iter = {'loss': first_loss}
    recorder.metrics = {0: {'coco/AP': 0.0}, 2: {'coco/AP': final_ap}}
    return OverfitResult(recorder, seconds=1.0, log_file='log')


def test_verdict_needs_falling_loss_and_ap_above_the_minimum():
    ok, line = _result(2e-3, 1e-3, 0.25).verdict(min_ap=0.2)
    assert ok and line == ('OK: epoch-mean loss 2.0000e-03 -> 1.0000e-03, '
                           'coco/AP 0.000 -> 0.250')
    ok, line = _result(1e-3, 1e-3, 0.25).verdict(min_ap=0.3)
    assert not ok
    assert line == ('FAILED: loss did not fall: epoch 1 1.0000e-03, last '
                    'epoch 1.0000e-03; final coco/AP 0.2500 is not above 0.3')
    ok, _ = _result(2e-3, math.nan, 0.25).verdict()
    assert not ok


@pytest.mark.slow
def test_tool_trains_and_reports_every_evaluation(tmp_path, capsys):
    """Two epochs (two iterations each): a row per evaluation, epoch 0
    before training; the loss of these seeded runs falls from epoch 1 to
    epoch 2 (AP stays 0 this early, hence --min-ap -1)."""
    work_dir = tmp_path / 'work'
    code = load_tool('overfit_benchmark').main([
        '--config', str(TINY_CONFIG), '--data-root',
        str(shared_path('data', 'coco')), '--epochs', '2',
        '--eval-interval', '1', '--min-ap', '-1', '--work-dir',
        str(work_dir)])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = re.findall(r'^\| (\d+) \| ([\d.e+-]+) \|', out, re.MULTILINE)
    assert [int(epoch) for epoch, _ in rows] == [0, 1, 2]
    assert all(math.isfinite(float(loss)) for _, loss in rows)
    assert '[overfit] OK: epoch-mean loss' in out
    assert (work_dir / 'epoch_2.pth').is_file()
    # the COCO evaluation's tables went to the log file, not the console
    log = (work_dir / 'overfit_console.log').read_text()
    assert log.count('Average Precision') == 3 * 5
    assert 'Average Precision' not in out
