"""Smoke test of tools/benchmark.py: the tiny config, an unbuildable config
and one whose predict fails; one image, one repeat, AP on the four shared
COCO images."""
import csv

import pytest
import torch

from .conftest import TINY_CONFIG, build_model, load_tool, shared_path


@pytest.fixture
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def one_image(tmp_path):
    coco = shared_path('data', 'coco')
    folder = tmp_path / 'images'
    folder.mkdir()
    (folder / 'img.jpg').symlink_to(coco / '000000000785.jpg')
    return folder


@pytest.fixture
def broken_config(tmp_path):
    path = tmp_path / 'broken.py'
    path.write_text(f"_base_ = ['{TINY_CONFIG}']\n"
                    "model = dict(head=dict(type='NoSuchHead'))\n")
    return path


@pytest.fixture
def unpredictable_config(tmp_path):
    """Builds and runs the network, but predict fails (no aug_scales)."""
    path = tmp_path / 'no_predict.py'
    path.write_text(f"_base_ = ['{TINY_CONFIG}']\n"
                    "model = dict(test_cfg=dict(multiscale_test=True))\n")
    return path


@pytest.fixture
def tiny_checkpoint(tmp_path):
    path = tmp_path / 'tiny.pth'
    torch.save({'state_dict': build_model(TINY_CONFIG).state_dict()}, path)
    return path


def read_rows(path):
    with open(path, newline='') as file:
        return {row['model']: row for row in csv.DictReader(file)}


def test_benchmark_reports_tiny_model_and_failures(
        tmp_path, one_image, broken_config, unpredictable_config,
        tiny_checkpoint, keep_torch_threads):
    coco = shared_path('data', 'coco')
    out = tmp_path / 'out'
    rows = load_tool('benchmark').main([
        '--models', f'tiny={TINY_CONFIG}', f'broken={broken_config}',
        f'no_predict={unpredictable_config}',
        '--checkpoint', f'tiny={tiny_checkpoint}',
        '--data-root', f'{coco}/', '--ann-file', 'test_coco.json',
        '--images', str(one_image), '--repeats', '1', '--threads', '1',
        '--out-dir', str(out)
    ])
    assert [row.model for row in rows] == ['tiny', 'broken', 'no_predict']
    for name in ('results.md', 'results.csv', 'latency.png'):
        assert (out / name).stat().st_size > 0, name

    results = read_rows(out / 'results.csv')
    tiny = results['tiny']
    assert tiny['status'] == 'ok', tiny['reason']
    for column in ('params_m', 'gflops', 'forward_ms', 'decode_ms',
                   'decode_flip_ms', 'e2e_ms', 'e2e_flip_ms', 'peak_rss_mb'):
        assert float(tiny[column]) > 0, column
    assert tiny['input_px'] == '256x448'
    assert 0 <= float(tiny['ap']) <= 1

    broken = results['broken']
    assert broken['status'] == 'build failed'
    assert broken['reason'].startswith('KeyError:')
    assert 'NoSuchHead' in broken['reason']

    no_predict = results['no_predict']  # reported per mode, still timed
    assert no_predict['status'] == 'ok'
    assert float(no_predict['forward_ms']) > 0
    assert no_predict['e2e_ms'] == no_predict['e2e_flip_ms'] == ''
    reason = 'ValueError: model.test_cfg.multiscale_test and the aug_scales'
    assert f'without flip test: {reason}' in no_predict['notes']
    assert f'; flip test: {reason}' in no_predict['notes']
    assert f'memory: {reason}' in no_predict['notes']

    table = (out / 'results.md').read_text()
    assert '| tiny |' in table
    assert 'broken (build failed): KeyError:' in table
