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
    import pytest
    path = SHARED_ROOT.joinpath(*parts)
    if not path.exists():
        message = (f'{path} not found: the reference fixtures and data are '
                   'expected in ../shared beside the repository (or set '
                   'HIGHERHRNET_SHARED)')
        if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'):
            pytest.fail(message + ' [CI=true: a missing fixture fails]')
        pytest.skip(message)
    return path
