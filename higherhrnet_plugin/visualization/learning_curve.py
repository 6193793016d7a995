"""The learning curve of a training run, from MMEngine's
``<run>/vis_data/scalars.json``: the heatmap loss per output resolution, the
associative-embedding pull and push losses, and the COCO AP of every
validation."""
import json
from pathlib import Path
from typing import Dict, List, Union

#: Keys drawn, by panel.
HEATMAP_KEYS = ('loss_heatmap_0', 'loss_heatmap_1')
TAG_KEYS = ('loss_pull_0', 'loss_push_0')
METRIC_KEYS = ('coco/AP', 'coco/AR')


def read_scalars(path: Union[str, Path]) -> Dict[str, List[dict]]:
    """Training and validation entries of a ``scalars.json``.

    MMEngine writes one JSON object per line: training entries carry
    ``iter`` / ``epoch`` and the losses, validation entries the metrics with
    ``step`` = the epoch just finished (by-epoch training). Each validation
    entry gets an ``iter``: the last training iteration logged up to its
    epoch.

    Returns:
        dict: ``{'train': [...], 'val': [...]}``, in file order.

    Raises:
        ValueError: naming the file and line that is not JSON.
    """
    path = Path(path)
    train, val = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as error:
            raise ValueError(f'{path}:{number}: not a JSON line ({error})')
        if 'iter' in entry:
            train.append(entry)
        elif any(key.startswith('coco/') for key in entry):
            done = [e['iter'] for e in train if e['epoch'] <= entry['step']]
            val.append(dict(entry, iter=max(done, default=0)))
    return dict(train=train, val=val)


def plot_learning_curve(scalars_file: Union[str, Path],
                        out_file: Union[str, Path],
                        title: str = '') -> Path:
    """Draw the run's losses and validation AP / AR against the iteration
    and save the figure (PNG).

    Args:
        scalars_file: MMEngine's ``vis_data/scalars.json`` of the run.
        out_file: the picture to write.
        title: figure title.

    Returns:
        Path: ``out_file``.
    """
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    scalars = read_scalars(scalars_file)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout='constrained')
    panels = ((axes[0], scalars['train'], HEATMAP_KEYS, 'heatmap loss',
               ('1/4 resolution', '1/2 resolution')),
              (axes[1], scalars['train'], TAG_KEYS, 'associative embedding',
               ('pull', 'push')),
              (axes[2], scalars['val'], METRIC_KEYS, 'validation',
               ('COCO AP', 'COCO AR')))
    for ax, entries, keys, name, labels in panels:
        for key, label in zip(keys, labels):
            points = [(e['iter'], e[key]) for e in entries if key in e]
            if points:
                # markers where the points are few (validations, short runs)
                ax.plot(*zip(*points), marker='o' if len(points) < 20 else
                        None, markersize=4, label=label)
        ax.set_title(name)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_yscale('log')
    axes[1].set_yscale('log')
    axes[2].set_ylim(0, 1)
    axes[2].set_xlim(axes[0].get_xlim())
    if title:
        fig.suptitle(title)
    out_file = Path(out_file)
    fig.savefig(out_file, dpi=90)
    plt.close(fig)
    return out_file
