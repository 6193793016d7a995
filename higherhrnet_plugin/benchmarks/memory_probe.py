"""Peak memory of one ``inference_bottomup`` call, in a fresh process.

A process's peak resident set size covers everything it ever held, so each
model is measured in a process of its own: :func:`measure_peak_memory` runs
this module (``python -m higherhrnet_plugin.benchmarks.memory_probe CONFIG
IMAGE [--checkpoint PATH] [--threads N]``), which builds the model as the
comparison does, resets the peak (Linux's ``VmHWM``, Linux >= 4.0), runs one
inference with the config's own test settings and prints one tagged JSON
line: the result or the error.
"""
import argparse
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Optional, Union

MODULE = 'higherhrnet_plugin.benchmarks.memory_probe'
TAG = 'MEMORY_PROBE_RESULT '


def measure_peak_memory(config: str,
                        image: Union[str, Path],
                        checkpoint: Optional[str] = None,
                        threads: Optional[int] = None) -> dict:
    """Run the probe in a fresh Python process (the environment and the
    working directory of this one).

    Args:
        config (str): a config path or ``package::path``.
        image (str | Path): the image file to run on.
        checkpoint (str, optional): weights (random without).
        threads (int, optional): torch threads (None: torch's default).

    Returns:
        dict: ``peak_rss_mb``, the peak RSS during the call, and
        ``rss_delta_mb``, its rise over the RSS just before the call, in MB.

    Raises:
        RuntimeError: one line: the probe's error, or how the process ended
            and the last line it wrote to stderr.
    """
    command = [sys.executable, '-m', MODULE, config, str(image)]
    if checkpoint:
        command += ['--checkpoint', checkpoint]
    if threads:
        command += ['--threads', str(threads)]
    result = subprocess.run(command, capture_output=True, text=True)
    found = [line for line in result.stdout.splitlines()
             if line.startswith(TAG)]
    if not found:
        tail = (result.stderr.strip().splitlines() or ['no output'])[-1]
        raise RuntimeError(f'exit status {result.returncode}: {tail[:200]}')
    measured = json.loads(found[-1][len(TAG):])
    if 'error' in measured:
        raise RuntimeError(measured['error'])
    return measured


def read_status_kb(key: str) -> int:
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise KeyError(key)


def reset_peak_rss() -> None:
    """Reset VmHWM (Linux >= 4.0) so that it tracks the peak from now on."""
    with open('/proc/self/clear_refs', 'w') as clear_refs:
        clear_refs.write('5')


def probe(config: str, image_path: str,
          checkpoint: Optional[str] = None) -> dict:
    """In this process: peak RSS of one ``inference_bottomup`` call and its
    rise over the RSS just before it, in MB."""
    from mmcv import imread
    from mmpose.apis import inference_bottomup

    from .comparison import ModelSpec, build_model
    model = build_model(ModelSpec(config, config, checkpoint))
    image = imread(image_path)
    reset_peak_rss()
    before = read_status_kb('VmRSS')
    inference_bottomup(model, image)
    peak = read_status_kb('VmHWM')
    return dict(peak_rss_mb=peak / 1024, rss_delta_mb=(peak - before) / 1024)


def main(argv=None) -> None:
    """The subprocess: one tagged JSON line on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('image')
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument('--threads', type=int, default=None)
    args = parser.parse_args(argv)
    warnings.filterwarnings('ignore', category=UserWarning)
    warnings.filterwarnings('ignore', category=FutureWarning)
    import torch  # the package's shims are in place: -m imported it

    from ..utils import describe_error
    from .comparison import REASON_CHARS
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = probe(args.config, args.image, args.checkpoint)
    except Exception as exc:  # noqa: BLE001  (reported by the parent)
        result = dict(error=describe_error(exc, REASON_CHARS))
    print(TAG + json.dumps(result))


if __name__ == '__main__':
    main()
