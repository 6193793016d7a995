"""A bottom-up estimator whose multi-scale test is reachable."""
from typing import List, Union

from torch import Tensor

from mmpose.models.pose_estimators import BottomupPoseEstimator
from mmpose.registry import MODELS


@MODELS.register_module()
class MultiScaleBottomupPoseEstimator(BottomupPoseEstimator):
    """``BottomupPoseEstimator`` that lets a multi-scale test batch through.

    MMPose's ``BasePoseEstimator.forward`` stacks list inputs into one
    tensor, which fails for images of different sizes, so its
    ``BottomupPoseEstimator.predict`` never sees the per-scale list it
    supports. With ``test_cfg.multiscale_test`` this class hands the list of
    (B, 3, h_s, w_s) tensors (base scale first) to ``predict`` unchanged;
    everything else is the parent's behaviour.
    """

    def forward(self,
                inputs: Union[Tensor, List[Tensor]],
                data_samples=None,
                mode: str = 'tensor'):
        multiscale = mode == 'predict' and isinstance(
            inputs, list) and self.test_cfg.get('multiscale_test', False)
        if not multiscale:
            return super().forward(inputs, data_samples, mode)
        if self.metainfo is not None:
            for data_sample in data_samples:
                data_sample.set_metainfo(self.metainfo)
        return self.predict(inputs, data_samples)
