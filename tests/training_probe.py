"""Test-only MMEngine hook used by ``tests/test_training.py``.

Configs written by those tests load it with
``custom_imports = dict(imports=['higherhrnet_plugin', 'training_probe'])``
(``tests/`` is put on ``PYTHONPATH`` of the training subprocess) and add
``custom_hooks = [dict(type='TrainingProbeHook', out_dir=...)]``.

At ``before_train`` (after MMEngine has initialised the weights and, when
resuming, loaded the checkpoint) and at ``after_train`` every rank saves what
its runner holds to ``<out_dir>/<stage>_rank<rank>.pth``: the unwrapped
model's state dict, the names of its parameters, the optimizer and
param-scheduler state dicts, the learning rates, epoch, iteration and the
world size. The tests compare these files with each other and with the
checkpoints.
"""
import os
import os.path as osp

import torch
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmpose.registry import HOOKS


def _cpu_copy(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return type(obj)((k, _cpu_copy(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return obj


@HOOKS.register_module(force=True)
class TrainingProbeHook(Hook):
    """Save the runner's training state at the start and the end of training.

    Args:
        out_dir (str): Folder for the ``<stage>_rank<rank>.pth`` files.
        stages (Sequence[str]): Any of ``'before_train'``, ``'after_train'``.
    """

    priority = 'LOWEST'

    def __init__(self, out_dir: str, stages=('before_train', 'after_train')):
        self.out_dir = out_dir
        self.stages = tuple(stages)

    def before_train(self, runner) -> None:
        if 'before_train' in self.stages:
            self._save(runner, 'before_train')

    def after_train(self, runner) -> None:
        if 'after_train' in self.stages:
            self._save(runner, 'after_train')

    def _save(self, runner, stage: str) -> None:
        rank, world_size = get_dist_info()
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        schedulers = runner.param_schedulers
        if isinstance(schedulers, dict):  # several optimizers
            schedulers = {k: [s.state_dict() for s in v]
                          for k, v in schedulers.items()}
        elif schedulers is not None:
            schedulers = [s.state_dict() for s in schedulers]
        state = dict(
            stage=stage,
            rank=rank,
            world_size=world_size,
            epoch=runner.epoch,
            iter=runner.iter,
            param_names=[name for name, _ in model.named_parameters()],
            state_dict=_cpu_copy(model.state_dict()),
            optimizer=_cpu_copy(runner.optim_wrapper.state_dict()),
            param_schedulers=_cpu_copy(schedulers),
            lr=runner.optim_wrapper.get_lr())
        os.makedirs(self.out_dir, exist_ok=True)
        torch.save(state, osp.join(self.out_dir, f'{stage}_rank{rank}.pth'))
