"""The speed benchmarks (decoder, inference overhead, throughput): their
stage timer and short runs of the tools."""
import dataclasses
import re
import shutil
import sys
import time
import types
from pathlib import Path

from higherhrnet_plugin.benchmarks.decoder import baseline_config
from higherhrnet_plugin.benchmarks.stage_timer import StageTimer
from higherhrnet_plugin.codecs import ae_grouping, ae_maps
from higherhrnet_plugin.codecs.ae_grouping import AEGroupingConfig

from .conftest import TINY_CONFIG, load_tool


class _Worker:

    def step(self):
        time.sleep(0.01)
        return 'step'

    def twice(self):
        return self.step() + self.step()


def test_stage_timer_times_stages_and_restores_what_it_wraps():
    module = types.SimpleNamespace()

    def inner():
        time.sleep(0.02)
        return 'inner'

    def outer():
        return module.inner() + worker.step()

    module.inner, module.outer = inner, outer
    worker = _Worker()
    timer = StageTimer()
    hooks = {'outer': [(module, 'outer')], 'inner': [(module, 'inner')],
             'step': [(worker, 'step')]}
    with timer.hooked(hooks):
        assert module.outer() == 'innerstep'
        module.outer()
    assert timer.wall['outer'] >= 0.06
    assert 0.04 <= timer.wall['inner'] < timer.wall['outer']
    assert 0.02 <= timer.wall['step'] < timer.wall['outer']
    # put back as they were: module functions, and no instance attribute
    assert module.inner is inner and module.outer is outer
    assert 'step' not in vars(worker)
    assert worker.step() == 'step'


def test_stage_timer_counts_nested_calls_of_a_stage_once():
    worker = _Worker()
    timer = StageTimer()
    with timer.hooked({'work': [(worker, 'twice'), (worker, 'step')]}):
        worker.twice()
    # 20 ms of sleep, counted once although both functions are hooked
    assert 0.02 <= timer.wall['work'] < 0.035


def test_decoder_benchmark_runs_and_checks(capsys, shared_coco):
    """One real-size case (W32-512 flip maps, one person): every decoder
    runs, ours matches the reference loop bit for bit, every stage gets a
    figure."""
    code = load_tool('benchmark_decoder').main([
        '--no-fixtures', '--models', 'W32-512', '--people', '1',
        '--repeats', '1'
    ])
    out = capsys.readouterr().out
    assert code == 0, out
    ours = [line for line in out.splitlines()
            if line.startswith('| W32-512, 1 person | ours |')]
    assert len(ours) == 1 and ours[0].endswith('| PASS |')
    cells = [c.strip() for c in ours[0].split('|')[3:-2]]
    assert len(cells) == 10 and all(float(c) >= 0 for c in cells)
    for decoder in ('MMPose 1.x', 'reference loop'):
        assert f'| W32-512, 1 person | {decoder} |' in out
    assert 'W32-512, 1 person: ours' in out and 'target <= 20 ms' in out


def test_decoder_benchmark_without_the_slow_decoders(capsys, shared_coco):
    """--slow-repeats 0: ours only, reported as not checked against the
    reference loop (which did not run), not as a failure."""
    code = load_tool('benchmark_decoder').main([
        '--no-fixtures', '--models', 'W32-512', '--people', '1',
        '--repeats', '1', '--slow-repeats', '0'
    ])
    out = capsys.readouterr().out
    assert code == 0, out
    assert '| W32-512, 1 person | ours |' in out
    assert out.count('| W32-512, 1 person | ours |') == 1
    assert [line for line in out.splitlines() if '| ours |' in line
            ][0].endswith('| not checked |')
    for decoder in ('MMPose 1.x', 'reference loop'):
        assert f'| W32-512, 1 person | {decoder} |' not in out


def test_baseline_gets_our_settings_under_its_own_names():
    """An older decoder (before max_people became max_offered_groups) gets
    its own config class, with our values under the names it knew."""

    @dataclasses.dataclass
    class OldConfig:
        topk: int = 30
        max_people: int = 30
        tag_threshold: float = 1.0

    old = types.SimpleNamespace(AEGroupingConfig=OldConfig)
    cfg = AEGroupingConfig(topk=12, max_offered_groups=7, tag_threshold=2.0)
    assert baseline_config(old, cfg) == OldConfig(12, 7, 2.0)
    assert baseline_config(ae_grouping, cfg) == cfg


def test_decoder_benchmark_times_an_older_checkout(capsys, shared_coco,
                                                  tmp_path):
    """--baseline FOLDER: the decoder of another checkout (here a copy of
    this one's codecs) runs side by side, from its own modules, and gives
    ours bit for bit."""
    codecs = Path(ae_grouping.__file__).parent
    copy = tmp_path / 'higherhrnet_plugin' / 'codecs'
    copy.mkdir(parents=True)
    for source in codecs.glob('*.py'):
        shutil.copy(source, copy / source.name)
    code = load_tool('benchmark_decoder').main([
        '--no-fixtures', '--models', 'W32-512', '--people', '1',
        '--repeats', '1', '--baseline', str(tmp_path)
    ])
    out = capsys.readouterr().out
    assert code == 0, out
    baseline = [line for line in out.splitlines()
                if line.startswith('| W32-512, 1 person | baseline')]
    assert len(baseline) == 1
    cells = [c.strip() for c in baseline[0].split('|')[3:-2]]
    assert all(float(c) >= 0 for c in cells)  # every stage timed
    assert re.search(r'time / ours: .*baseline [0-9.]+x', out)
    # with the kernels built, our NumPy path runs beside them, checked
    assert (('| W32-512, 1 person | ours, NumPy path |' in out) ==
            ae_maps.kernels_built())
    assert '| PASS |' in out
    assert sys.modules['baseline_codecs.ae_maps'].__file__ == str(
        copy / 'ae_maps.py')


def test_overhead_benchmark_runs(capsys, shared_coco):
    """The tiny model, two runs: the four timings, (b) split into its
    parts, the ratios against the target."""
    code = load_tool('benchmark_overhead').main(
        ['--config', str(TINY_CONFIG), '--runs', '2', '--threads', '1'])
    out = capsys.readouterr().out
    assert code == 0, out
    for row in ('(a) two forward passes', '(b) inference_bottomup, flip test',
                '(c) two forward passes, fused BN',
                '(d) inference_bottomup, fused BN'):
        assert f'| {row} |' in out
    assert '(b) beyond the network, median ms: data preprocessor' in out
    assert 'end-to-end / forwards (median over runs): ' in out
    assert 'target <= 1.05' in out and 'BatchNorm fusion: forwards' in out


def test_throughput_benchmark_plants_outputs_and_batches(capsys, shared_coco):
    """The tiny model with flip test on the annotated images of ../shared
    (planted perfect outputs, images of several sizes): batch sizes 1 and
    3 report their rates and decode shares and find the same people."""
    code = load_tool('benchmark_throughput').main([
        '--config', str(TINY_CONFIG), '--flip', '--batch-sizes', '1', '3',
        '--rounds', '1', '--threads', '1'
    ])
    out = capsys.readouterr().out
    assert code == 0, out
    assert 'planted perfect outputs' in out and 'flip test on' in out
    rows = {int(cells[1]): cells[2:-1] for cells in (
        [c.strip() for c in line.split('|')] for line in out.splitlines()
        if re.match(r'\| [0-9]+ \|', line))}
    assert sorted(rows) == [1, 3]
    people = {size: int(row[-1]) for size, row in rows.items()}
    # the 7 annotated images hold 17 people with keypoints
    assert people[1] == people[3] >= 17
    for rate, ms, share, ratio, _ in rows.values():
        assert float(rate) > 0 and float(share.rstrip('%')) > 0
