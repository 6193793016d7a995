"""How the command-line tools report failures and keep the console
readable: one line per error, no traceback; library output to a log file."""
import contextlib
import sys
import traceback
from pathlib import Path
from typing import Callable, Iterator, Optional, TextIO, Tuple, Type, Union


def describe_error(err: BaseException,
                   max_chars: Optional[int] = None) -> str:
    """``'ExceptionType: first line of the message'``, for one-line reports.

    An exception without a message is described by where it was raised
    (``'AssertionError: raised at head.py:120'``).

    Args:
        err (BaseException): the exception.
        max_chars (int, optional): cut the message to this many characters
            (e.g. to keep a table readable).
    """
    lines = str(err).strip().splitlines()
    message = lines[0][:max_chars] if lines else ''
    if not message and err.__traceback__ is not None:
        frame = traceback.extract_tb(err.__traceback__)[-1]
        message = f'raised at {Path(frame.filename).name}:{frame.lineno}'
    return f'{type(err).__name__}: {message}' if message else \
        type(err).__name__


def run_cli(prog: str,
            action: Callable[[], None],
            debug: bool = False,
            expected: Tuple[Type[BaseException], ...] = (),
            context: str = '') -> int:
    """Run ``action`` and turn an exception into a one-line error message.

    Args:
        prog (str): the tool's name, printed before each error.
        action (callable): the tool's work.
        debug (bool): re-raise instead, to show the traceback.
        expected (tuple): exception types whose message is already complete
            (it names the input and the problem): printed as it is.
        context (str): what the tool was working on (e.g. the input file),
            printed before the type and first line of unexpected errors.

    Returns:
        int: the exit code, 0 on success and 1 on failure.
    """
    try:
        action()
    except expected as err:
        if debug:
            raise
        print(f'{prog}: error: {err}', file=sys.stderr)
        return 1
    except Exception as err:  # not anticipated: still no traceback
        if debug:
            raise
        print(f'{prog}: error: {context}{describe_error(err)} '
              '(rerun with --debug for the traceback)', file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def console_to_file(log_file: Union[str, Path],
                    enabled: bool = True) -> Iterator[TextIO]:
    """Send what is printed (``sys.stdout`` and ``sys.stderr``) to
    ``log_file`` while the block runs, e.g. MMEngine's console log and the
    COCO evaluation's tables, so that a tool can show its own summary lines
    on a console of their own.

    The file is created (emptied) either way; with ``enabled=False`` nothing
    is redirected (a ``--verbose`` run). Yields the open file.
    """
    with open(log_file, 'w') as log, contextlib.ExitStack() as stack:
        if enabled:
            stack.enter_context(contextlib.redirect_stdout(log))
            stack.enter_context(contextlib.redirect_stderr(log))
        yield log
