"""A bottom-up estimator whose test batches may hold several images, of
different sizes, at several scales."""
from typing import List, Optional, Union

from torch import Tensor

from mmpose.models.pose_estimators import BottomupPoseEstimator
from mmpose.registry import MODELS
from mmpose.utils.typing import InstanceList, PixelDataList, SampleList
from ..postprocess import attach_predictions, predict_batch


@MODELS.register_module()
class MultiScaleBottomupPoseEstimator(BottomupPoseEstimator):
    """``BottomupPoseEstimator`` for HigherHRNet's test: batched, multi-scale
    and flip test, every image post-processed within its own input.

    MMPose's ``BasePoseEstimator.forward`` stacks list inputs into one
    tensor, which fails for images of different sizes, so its
    ``BottomupPoseEstimator.predict`` never sees the per-scale list it
    supports; it also post-processes a batch with the first image's sizes.
    Here ``predict`` is :func:`predict_batch`: the views are run, each image
    is grouped within its own part of the padded batch and its keypoints
    are mapped back to it. Training is the parent's.
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

    def network(self, inputs: Tensor) -> List[Tensor]:
        """Backbone (+ neck) and head: (B, 3, H, W) -> the head's outputs."""
        return self.head.forward(self.extract_feat(inputs))

    def predict(self, inputs: Union[Tensor, List[Tensor]],
                data_samples: SampleList) -> SampleList:
        """People in every image of the batch.

        Args:
            inputs (Tensor | List[Tensor]): (B, 3, H, W), or with
                ``multiscale_test`` one such tensor per scale (base first).
            data_samples (List[PoseDataSample]): the batch's samples.

        Returns:
            List[PoseDataSample]: with ``pred_instances`` in image pixels
            (and ``pred_fields`` with ``test_cfg.output_heatmaps``).
        """
        return predict_batch(self.network, inputs, data_samples,
                             self.head.layout, self.head.decoder,
                             self.test_cfg)

    def add_pred_to_datasample(self, batch_pred_instances: InstanceList,
                               batch_pred_fields: Optional[PixelDataList],
                               batch_data_samples: SampleList) -> SampleList:
        """Store the predictions, keypoints mapped to image pixels (see
        :func:`attach_predictions`)."""
        return attach_predictions(batch_pred_instances, batch_pred_fields,
                                  batch_data_samples)
