"""The report of :mod:`.comparison`: a Markdown table (with the run's
context, notes and the models that could not be benchmarked), a CSV file of
every field and a plot of end-to-end latency."""
import csv
import datetime
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import List

import torch

from .comparison import Row
from .machine import cpu_name

COLUMNS = [  # (Row field, Markdown header, format)
    ('model', 'model', '{}'),
    ('input_px', 'test input (px)', '{}'),
    ('params_m', 'params (M)', '{:.2f}'),
    ('gflops', 'GFLOPs', '{:.1f}'),
    ('forward_ms', 'forward (ms)', '{:.0f}'),
    ('decode_ms', 'decode (ms)', '{:.0f}'),
    ('decode_flip_ms', 'decode, flip (ms)', '{:.0f}'),
    ('e2e_ms', 'end-to-end (ms)', '{:.0f}'),
    ('e2e_flip_ms', 'end-to-end, flip (ms)', '{:.0f}'),
    ('peak_rss_mb', 'peak RSS (MB)', '{:.0f}'),
    ('rss_delta_mb', 'RSS rise (MB)', '{:.0f}'),
    ('ap', 'AP', '{:.3f}'),
]


def cell(row: Row, name: str, fmt: str) -> str:
    value = getattr(row, name)
    return '—' if value is None or value == '' else fmt.format(value)


def markdown(rows: List[Row], context: dict) -> str:
    header = [title for _, title, _ in COLUMNS]
    lines = [f'# Bottom-up pose benchmark ({context["date"]})', '',
             ', '.join(f'{k}: {v}' for k, v in context.items()), '',
             '| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    for row in rows:
        lines.append('| ' + ' | '.join(
            cell(row, name, fmt) for name, _, fmt in COLUMNS) + ' |')
    notes = [f'- {row.model}: {note}' for row in rows for note in row.notes
             if row.status == 'ok']
    if notes:
        lines += ['', 'Notes:', ''] + notes
    failed = [row for row in rows if row.status != 'ok']
    if failed:
        lines += ['', 'Could not be benchmarked here:', '']
        lines += [f'- {row.model} ({row.status}): {row.reason}'
                  for row in failed]
    return '\n'.join(lines) + '\n'


def write_csv(rows: List[Row], path: Path) -> None:
    with open(path, 'w', newline='') as file:
        writer = csv.DictWriter(file, [f.name for f in fields(Row)])
        writer.writeheader()
        for row in rows:
            values = {key: round(value, 3) if isinstance(value, float)
                      else value for key, value in asdict(row).items()}
            writer.writerow(dict(values, notes='; '.join(row.notes)))


def plot_latency(rows: List[Row], path: Path) -> None:
    """End-to-end latency vs AP if any model has one, else vs GFLOPs."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    x_field = 'ap' if any(r.ap is not None for r in rows) else 'gflops'
    plotted = [r for r in rows if getattr(r, x_field) is not None]
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, row in enumerate(plotted):
        for y_field, marker in (('e2e_ms', 'o'), ('e2e_flip_ms', 'x')):
            if getattr(row, y_field) is not None:
                ax.scatter(getattr(row, x_field), getattr(row, y_field),
                           color=f'C{i}', marker=marker)
        ax.scatter([], [], color=f'C{i}', marker='s', label=row.model)
    ax.scatter([], [], color='gray', marker='o', label='no flip')
    ax.scatter([], [], color='gray', marker='x', label='flip test')
    ax.set_xlabel('COCO AP' if x_field == 'ap'
                  else 'GFLOPs (MMEngine, 1 multiply-add = 1 flop)')
    ax.set_ylabel('end-to-end latency per image (ms)')
    ax.set_title('CPU end-to-end latency (median)')
    ax.grid(alpha=0.3)
    ax.margins(x=0.1, y=0.1)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_context(started: datetime.datetime, load_before: float,
                images: str, repeats: int) -> dict:
    """The line above the table: when, on what, with which settings and
    under which load (``images`` says which images were timed)."""
    return {
        'date': started.strftime('%Y-%m-%d %H:%M'),
        'machine': f'{cpu_name()}, {os.cpu_count()} CPU cores',
        'torch threads': torch.get_num_threads(),
        'OMP_WAIT_POLICY': os.environ.get('OMP_WAIT_POLICY', 'unset'),
        'torch': torch.__version__,
        'images': images,
        'repeats': repeats,
        'load (1 min) before/after':
            f'{load_before:.2f} / {os.getloadavg()[0]:.2f}',
    }


def write_outputs(rows: List[Row], context: dict, out_dir: Path) -> str:
    """``results.md``, ``results.csv`` and ``latency.png`` in ``out_dir``;
    returns the Markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown(rows, context)
    (out_dir / 'results.md').write_text(table)
    write_csv(rows, out_dir / 'results.csv')
    plot_latency(rows, out_dir / 'latency.png')
    return table
