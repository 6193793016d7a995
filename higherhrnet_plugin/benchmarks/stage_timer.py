"""Where a run spends its time: the functions that make up each stage are
wrapped while it runs, and the time spent in them added up per stage."""
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Dict, List, Tuple

#: Stage name -> (owner, attribute) of the functions that make it up.
Hooks = Dict[str, List[Tuple[object, str]]]


class StageTimer:
    """Wall and thread (CPU) seconds spent in hooked functions, by stage.

    Nested calls of hooked functions of the same stage count once.
    """

    def __init__(self):
        self.wall: Dict[str, float] = defaultdict(float)
        self.cpu: Dict[str, float] = defaultdict(float)
        self._depth: Dict[str, int] = defaultdict(int)

    def _wrap(self, stage: str, function: Callable) -> Callable:

        def timed(*args, **kwargs):
            self._depth[stage] += 1
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self._depth[stage] -= 1
                if self._depth[stage] == 0:
                    self.wall[stage] += time.perf_counter() - wall
                    self.cpu[stage] += time.thread_time() - cpu

        return timed

    @contextmanager
    def hooked(self, hooks: Hooks):
        """Time the hooked functions while the block runs; a method is
        wrapped on the instance given, and put back as it was."""
        saved = []
        try:
            for stage, targets in hooks.items():
                for owner, name in targets:
                    own = name in getattr(owner, '__dict__', {})
                    original = getattr(owner, name)
                    saved.append((owner, name, original, own))
                    setattr(owner, name, self._wrap(stage, original))
            yield self
        finally:
            for owner, name, original, own in reversed(saved):
                if own:
                    setattr(owner, name, original)
                else:
                    delattr(owner, name)
