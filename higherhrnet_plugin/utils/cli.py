"""How the command-line tools report failures: one line, no traceback."""
import sys
from typing import Callable, Tuple, Type


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
        first_line = (str(err).strip().splitlines() or [''])[0]
        print(f'{prog}: error: {context}{type(err).__name__}: {first_line} '
              '(rerun with --debug for the traceback)', file=sys.stderr)
        return 1
    return 0
