"""Strict weights in every tool: an unconverted official checkpoint is
converted in memory (said in one line) and gives the converted checkpoint's
weights; a checkpoint of another model stops each tool with one line naming
the file. Never a run on random weights."""
import contextlib
import logging

import pytest
import torch

from higherhrnet_plugin.apis import CheckpointError, init_model

from .conftest import TINY_CONFIG, build_model, load_tool, shared_path

IMAGE = ('data', 'coco', '000000000785.jpg')
CONVERTED_LINE = 'converted to the MMPose 1.x layout in memory'


@contextlib.contextmanager
def captured_log():
    """What MMEngine's current logger emits."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    messages = []

    class _Collect(logging.Handler):

        def emit(self, record):
            messages.append(record.getMessage())

    handler = _Collect(logging.INFO)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


@pytest.fixture(scope='module')
def official():
    return shared_path('fixtures', 'official_tiny_higherhrnet.pth')


@pytest.fixture(scope='module')
def converted(converted_tiny):
    return converted_tiny


@pytest.fixture(scope='module')
def other_model(tmp_path_factory):
    """An MMPose 1.x top-down HRNet checkpoint: backbone keys like ours, a
    top-down head."""
    state_dict = {k: v for k, v in build_model(TINY_CONFIG).state_dict()
                  .items() if k.startswith('backbone.')}
    state_dict['head.final_layer.weight'] = torch.zeros(17, 8, 1, 1)
    state_dict['head.final_layer.bias'] = torch.zeros(17)
    path = tmp_path_factory.mktemp('ckpt') / 'topdown_hrnet.pth'
    torch.save({'state_dict': state_dict}, path)
    return path


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def _one_error_line(text: str, path) -> str:
    lines = [line for line in text.splitlines() if 'error' in line]
    assert len(lines) == 1, text[-2000:]
    assert str(path) in lines[0], lines[0]
    return lines[0]


def test_init_model_converts_official_in_memory(official, converted):
    with captured_log() as log:
        model = init_model(str(TINY_CONFIG), str(official))
    assert sum(CONVERTED_LINE in m and str(official) in m for m in log) == 1
    _same_weights(model, init_model(str(TINY_CONFIG), str(converted)))
    # and not the random weights of a fresh model
    fresh = init_model(str(TINY_CONFIG), None)
    assert not torch.equal(fresh.state_dict()['head.final_layers.0.weight'],
                           model.state_dict()['head.final_layers.0.weight'])


def test_init_model_refuses_another_model(other_model):
    with pytest.raises(CheckpointError) as err:
        init_model(str(TINY_CONFIG), str(other_model))
    message = str(err.value)
    assert message.startswith(str(other_model))
    assert "'head.final_layer.weight'" in message
    assert 'missing key' in message and len(message.splitlines()) == 1


def test_init_model_keeps_the_checkpoints_dataset_meta(converted, tmp_path):
    saved = torch.load(converted, weights_only=True)
    meta = dict(dataset_name='mine', num_keypoints=17)
    path = tmp_path / 'with_meta.pth'
    torch.save({'state_dict': saved['state_dict'],
                'meta': {'dataset_meta': meta}}, path)
    assert init_model(str(TINY_CONFIG), str(path)).dataset_meta == meta


def test_demo(official, converted, other_model, tmp_path, capsys):
    demo = load_tool('demo')
    image = shared_path(*IMAGE)
    outputs = {}
    for name, ckpt in (('official', official), ('converted', converted)):
        out = tmp_path / name
        assert demo.main([str(TINY_CONFIG), str(ckpt), str(image), '--out',
                          str(out), '--cfg-options',
                          'model.head.decoder.decode_topk=5']) == 0
        outputs[name] = (out / image.name).read_bytes()
    assert outputs['official'] == outputs['converted']
    capsys.readouterr()
    assert demo.main([str(TINY_CONFIG), str(other_model), str(image),
                      '--out', str(tmp_path / 'bad')]) == 1
    _one_error_line(capsys.readouterr().err, other_model)
    assert not (tmp_path / 'bad').exists()


def test_export_onnx_refuses_another_model(other_model, tmp_path, capsys):
    export = load_tool('export_onnx')
    out = tmp_path / 'model.onnx'
    assert export.main([str(TINY_CONFIG), str(other_model), str(out)]) == 1
    line = _one_error_line(capsys.readouterr().err, other_model)
    assert 'does not match the model of' in line
    assert not out.exists()


@pytest.mark.slow
def test_export_onnx_converts_official(official, tmp_path, capsys):
    pytest.importorskip('onnx')
    export = load_tool('export_onnx')
    out = tmp_path / 'model.onnx'
    with captured_log() as log:
        code = export.main([str(TINY_CONFIG), str(official), str(out)])
    assert code == 0, capsys.readouterr().err
    assert out.is_file()
    assert any(CONVERTED_LINE in m for m in log)


def test_benchmark_builds_strictly(official, converted, other_model):
    from higherhrnet_plugin.benchmarks.comparison import (ModelSpec,
                                                          build_model)
    model = build_model(ModelSpec('tiny', str(TINY_CONFIG), str(official)))
    _same_weights(model, init_model(str(TINY_CONFIG), str(converted)))
    with pytest.raises(CheckpointError, match='topdown_hrnet.pth'):
        build_model(ModelSpec('tiny', str(TINY_CONFIG), str(other_model)))


def test_benchmark_onnx_refuses_another_model(other_model, capsys):
    tool = load_tool('benchmark_onnx')
    assert tool.main(['--config', str(TINY_CONFIG), '--checkpoint',
                      str(other_model)]) == 1
    _one_error_line(capsys.readouterr().err, other_model)


def test_quickstart_draws_with_strict_weights(official, other_model,
                                              tmp_path):
    from mmengine.config import Config

    from higherhrnet_plugin.apis.quickstart import draw_predictions
    image = shared_path(*IMAGE)
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.model.head.decoder.decode_topk = 5
    draw_predictions(cfg, str(official), [image], tmp_path / 'prediction.png')
    assert (tmp_path / 'prediction.png').is_file()
    with pytest.raises(CheckpointError):
        draw_predictions(cfg, str(other_model), [image], tmp_path / 'bad.png')
