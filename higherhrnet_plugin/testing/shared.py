"""Where the reference fixtures and the real images live.

``../shared`` beside the repository holds the official parity fixtures
(``fixtures/``) and real COCO / CrowdPose / OCHuman images (``data/``); CI
places it there. ``HIGHERHRNET_SHARED`` points elsewhere.
"""
import os
from pathlib import Path

#: The folder with ``fixtures/`` and ``data/``.
SHARED_ROOT = Path(
    os.environ.get('HIGHERHRNET_SHARED',
                   Path(__file__).resolve().parents[2].parent / 'shared'))


def shared_path(*parts: str) -> Path:
    """A path under :data:`SHARED_ROOT` that must exist.

    Outside CI a missing path skips the calling test (a developer may not
    have the fixtures); in CI (``CI=true``) it fails it, so that a missing
    fixture can never turn into a silently green run.

    Raises:
        pytest.fail.Exception / pytest.skip.Exception: if it is missing.
    """
    path = SHARED_ROOT.joinpath(*parts)
    if not path.exists():
        skip_or_fail(f'{path} not found: the reference fixtures and data are '
                     'expected in ../shared beside the repository (or set '
                     'HIGHERHRNET_SHARED)')
    return path


def skip_or_fail(message: str) -> None:
    """Skip the calling test because something it needs is missing; fail it
    instead in CI (``CI=true``).

    Raises:
        pytest.fail.Exception / pytest.skip.Exception: always.
    """
    import pytest
    if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'):
        pytest.fail(message + ' [CI=true: a missing reference fails]')
    pytest.skip(message)
