"""The metafiles (MMPose's model-zoo format): every config has an entry and
every entry a config, the entries are complete, and the model-zoo table of
docs/configs.md shows the same results (the quick start's result also
agrees with the summary the README shows)."""
import re
from pathlib import Path

import pytest
import yaml

from .conftest import CONFIGS, REPO

# results published elsewhere (with a checkpoint) or measured by this
# repository (the quick start trains its model in minutes: no checkpoint)
PUBLISHED = {'original implementation', 'MMPose 0.x'}
OWN = 'this repository'
TESTS = ('single-scale', 'multi-scale')
DATASETS = {'CocoDataset': 'COCO', 'CrowdPoseDataset': 'CrowdPose'}
# the quick start's generated people, read by CocoDataset
SYNTHETIC = ('data/synthetic_coco/', 'Synthetic people')
LAYOUTS = {'official', 'MMPose 0.x'}


def _metafiles():
    index = yaml.safe_load((REPO / 'model-index.yml').read_text())
    return [REPO / path for path in index['Import']]


def _models():
    models = []
    for path in _metafiles():
        models += yaml.safe_load(path.read_text())['Models']
    return models


def _collections():
    names = set()
    for path in _metafiles():
        for collection in yaml.safe_load(path.read_text()).get(
                'Collections', []):
            names.add(collection['Name'])
    return names


def test_model_index_imports_every_metafile():
    imported = sorted(p.resolve() for p in _metafiles())
    assert imported == sorted(CONFIGS.glob('*/*.yml'))


def test_every_config_has_one_entry_and_every_entry_a_config():
    configs = sorted(str(p.relative_to(REPO)) for p in CONFIGS.glob('*/*.py'))
    entries = sorted(m['Config'] for m in _models())
    assert entries == configs
    for model in _models():
        assert model['Name'] == Path(model['Config']).stem
        assert (REPO / model['Config']).is_file()
        assert model['In Collection'] in _collections()


def _training_data(cfg) -> str:
    """The name a metafile gives the data a config trains on."""
    dataset = cfg.train_dataloader.dataset
    if dataset.data_root == SYNTHETIC[0]:
        return SYNTHETIC[1]
    return DATASETS[dataset.type]


@pytest.mark.parametrize('model', _models(), ids=lambda m: m['Name'])
def test_entry_is_complete(model):
    from mmengine.config import Config
    cfg = Config.fromfile(str(REPO / model['Config']))
    meta = model['Metadata']
    assert 'HigherHRNet' in meta['Architecture']
    assert meta['Training Data'] == _training_data(cfg)
    for result in model.get('Results', []):
        assert result['Dataset'] == meta['Training Data']
        assert result['Task'] == 'Body 2D Keypoint'
        assert result['Source'] in PUBLISHED | {OWN}
        assert result['Test'] in TESTS
        assert all(0 < v < 1 for v in result['Metrics'].values())
    if any(r['Source'] in PUBLISHED for r in model.get('Results', [])):
        # where results are published, so is a checkpoint, with the command
        # that converts it for this config
        assert model['Weights'].startswith('https://')
        assert model['Weights Layout'] in LAYOUTS
        command = model['Converter'].split()
        assert command[:2] == ['python', 'tools/convert_checkpoint.py']
        assert command[-2:] == ['--config', model['Config']]


def _docs_table():
    """config name -> {source: (single-scale AP, multi-scale AP)} as in the
    model-zoo table of docs/configs.md ('—' rows: no results; a '—' AP:
    None)."""
    text = (REPO / 'docs' / 'configs.md').read_text()
    section = text.split('## Model zoo', 1)[1].split('\n## ', 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r'\| `([^`]+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|',
                         line)
        if not match:
            continue
        name, source, single, multi = (g.strip() for g in match.groups())
        results = rows.setdefault(name, {})
        if source != '—':
            results[source] = tuple(None if ap == '—' else float(ap)
                                    for ap in (single, multi))
    return rows


def test_docs_model_zoo_table_agrees_with_the_metafiles():
    expected = {}
    for model in _models():
        results = expected.setdefault(model['Name'], {})
        for result in model.get('Results', []):
            pair = results.setdefault(result['Source'], [None, None])
            pair[TESTS.index(result['Test'])] = result['Metrics']['AP']
    expected = {name: {source: tuple(aps) for source, aps in results.items()}
                for name, results in expected.items()}
    assert _docs_table() == expected


def test_quickstart_result_is_the_readme_summary():
    """The quick start's entry reports the run the README shows."""
    own = [(m, r) for m in _models() for r in m.get('Results', [])
           if r['Source'] == OWN]
    assert own, f'no result with Source {OWN!r}'
    readme = (REPO / 'README.md').read_text()
    for model, result in own:
        assert model['Name'] in readme
        metrics = result['Metrics']
        line = (f"evaluation : COCO AP {metrics['AP']:.3f}  "
                f"AP .5 {metrics['AP@0.5']:.3f}  AR {metrics['AR']:.3f}")
        assert line in readme, f'{line!r} not in README.md'
