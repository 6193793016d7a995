"""An exported HigherHRNet on ONNX Runtime, as an MMPose pose estimator.

ONNX Runtime runs the network only (see :mod:`.onnx_export`). Everything
around it is what the PyTorch model does, from the same config:

- the config's test pipeline (``inference_bottomup``, ``Runner.test``) and
  its ``model.data_preprocessor``;
- :func:`~higherhrnet_plugin.models.postprocess.predict_batch`: flip and
  multi-scale views, aggregation, grouping with the config's codec,
  keypoints back in image pixels.

So the results are ``PoseDataSample``\\ s that ``PoseLocalVisualizer``
draws and ``CocoMetric`` scores, and ``tools/test_onnx.py`` evaluates an
exported model with MMEngine's test loop, exactly as ``mim test`` does.
"""
import copy
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from torch import Tensor

from mmpose.registry import KEYPOINT_CODECS, MODELS
from ..models.heads import HigherHRNetHead
from ..models.postprocess import OutputLayout, predict_batch


@MODELS.register_module()
class OnnxBottomupPoseEstimator(BaseModel):
    """Bottom-up pose estimation with a HigherHRNet graph on ONNX Runtime.

    Args:
        onnx_file (str): a graph written by :func:`export_onnx`.
        head (dict): the config's ``model.head`` (output layout and
            ``decoder``; no module is built from it).
        data_preprocessor (dict): the config's ``model.data_preprocessor``.
        test_cfg (dict, optional): the config's ``model.test_cfg``.
        providers (Sequence[str], optional): ONNX Runtime execution
            providers. Defaults to ``['CPUExecutionProvider']``.
        num_threads (int, optional): ONNX Runtime's intra-op threads
            (default: its own choice).
        metainfo (dict, optional): dataset metainfo that overrides the
            samples' (as ``BasePoseEstimator``'s).
    """

    def __init__(self,
                 onnx_file: str,
                 head: dict,
                 data_preprocessor: dict,
                 test_cfg: Optional[dict] = None,
                 providers: Optional[Sequence[str]] = None,
                 num_threads: Optional[int] = None,
                 metainfo: Optional[dict] = None):
        import onnxruntime as ort
        super().__init__(data_preprocessor=data_preprocessor)
        self.test_cfg = dict(test_cfg or {})
        self.metainfo = metainfo
        self.layout = OutputLayout.of_head(HigherHRNetHead, head)
        if head.get('decoder') is None:
            raise ValueError('the config has no model.head.decoder')
        self.decoder = KEYPOINT_CODECS.build(copy.deepcopy(head['decoder']))
        self.onnx_file = str(onnx_file)
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        self.session = ort.InferenceSession(
            self.onnx_file,
            sess_options=options,
            providers=list(providers or ['CPUExecutionProvider']))
        self.input_name = self.session.get_inputs()[0].name
        num_outputs = len(self.session.get_outputs())
        if num_outputs != self.layout.num_outputs:
            raise ValueError(
                f'{self.onnx_file} has {num_outputs} outputs but the head of '
                f'the config produces {self.layout.num_outputs} (with_ae='
                f'{list(self.layout.with_ae)})')

    def network(self, inputs: Tensor) -> List[Tensor]:
        """The graph's outputs for a (B, 3, H, W) input."""
        array = np.ascontiguousarray(inputs.detach().cpu().numpy(),
                                     np.float32)
        outputs = self.session.run(None, {self.input_name: array})
        return [torch.from_numpy(o).to(inputs.device) for o in outputs]

    def forward(self,
                inputs: Union[Tensor, List[Tensor]],
                data_samples=None,
                mode: str = 'predict'):
        if mode != 'predict':
            raise RuntimeError(f'{type(self).__name__} only predicts '
                               f'(mode={mode!r}); train the PyTorch model')
        if self.metainfo is not None:
            for data_sample in data_samples:
                data_sample.set_metainfo(self.metainfo)
        return predict_batch(self.network, inputs, data_samples, self.layout,
                             self.decoder, self.test_cfg,
                             views_in_one_batch=True)


def onnx_model_config(cfg: Config, onnx_file: str, **kwargs) -> dict:
    """``cfg.model`` turned into an :class:`OnnxBottomupPoseEstimator`
    config for ``onnx_file`` (``kwargs``: providers, num_threads)."""
    model = cfg.model
    return dict(
        type='OnnxBottomupPoseEstimator',
        onnx_file=str(onnx_file),
        head=copy.deepcopy(model.head),
        data_preprocessor=copy.deepcopy(model.data_preprocessor),
        test_cfg=copy.deepcopy(model.get('test_cfg', {})),
        **kwargs)


def init_onnx_model(config: Union[str, Config],
                    onnx_file: str,
                    cfg_options: Optional[dict] = None,
                    **kwargs) -> OnnxBottomupPoseEstimator:
    """:func:`mmpose.apis.init_model` for an exported model: the result
    works with ``inference_bottomup`` and ``PoseLocalVisualizer``.

    Args:
        config (str | Config): the config the graph was exported from.
        onnx_file (str): the graph.
        cfg_options (dict, optional): overrides of the config.
        **kwargs: ``providers`` / ``num_threads`` for ONNX Runtime.
    """
    from mmpose.apis.inference import dataset_meta_from_config
    from mmpose.utils import register_all_modules
    cfg = config if isinstance(config, Config) else Config.fromfile(
        str(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    register_all_modules(init_default_scope=False)
    model = MODELS.build(onnx_model_config(cfg, onnx_file, **kwargs))
    model.cfg = cfg
    model.dataset_meta = dataset_meta_from_config(cfg, dataset_mode='train')
    model.eval()
    return model


def test_onnx_model(config: Union[str, Config],
                    onnx_file: str,
                    work_dir: str,
                    cfg_options: Optional[dict] = None,
                    **kwargs) -> dict:
    """Evaluate an exported model with the config's test loop (dataloader,
    evaluator), exactly as ``mim test`` evaluates the PyTorch model.

    Args:
        config (str | Config): the config the graph was exported from.
        onnx_file (str): the graph.
        work_dir (str): for MMEngine's logs.
        cfg_options (dict, optional): overrides of the config (e.g. the
            test dataset's ``data_root`` / ``ann_file``).
        **kwargs: ``providers`` / ``num_threads`` for ONNX Runtime.

    Returns:
        dict: the evaluator's metrics, e.g. ``coco/AP``.
    """
    from mmengine.runner import Runner
    cfg = config if isinstance(config, Config) else Config.fromfile(
        str(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.model = onnx_model_config(cfg, onnx_file, **kwargs)
    cfg.work_dir = str(work_dir)
    cfg.load_from = None
    cfg.launcher = 'none'
    return Runner.from_cfg(cfg).test()
