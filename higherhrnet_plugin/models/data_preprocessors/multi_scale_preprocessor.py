"""Normalisation of batches that hold one image per test scale."""
from mmpose.models.data_preprocessors import PoseDataPreprocessor
from mmpose.registry import MODELS


@MODELS.register_module()
class MultiScalePoseDataPreprocessor(PoseDataPreprocessor):
    """``PoseDataPreprocessor`` that also takes samples whose input is a list
    of images, one per test scale (see :class:`PackMultiScalePoseInputs`).

    MMEngine's ``pseudo_collate`` turns such samples into one list per
    scale (each holding the batch's images); each becomes a normalised
    (B, 3, h_s, w_s) tensor, base scale first, which is what
    ``BottomupPoseEstimator.predict`` expects with ``multiscale_test``.
    Images of different sizes are padded to a common size per scale, so
    every sample records its own input (h, w) per scale, before padding, as
    ``scale_input_shapes``: the post-processing cuts each image's outputs
    to it. Other batches are handled by the parent unchanged.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        if not inputs or not isinstance(inputs[0], (list, tuple)):
            return super().forward(data, training)
        per_scale = inputs
        for i, sample in enumerate(data['data_samples']):
            sample.set_metainfo(
                dict(scale_input_shapes=[
                    tuple(images[i].shape[-2:]) for images in per_scale
                ]))
        normalised = [None] * len(per_scale)
        # The parent records the input shape in the metainfo; run the base
        # scale last so the metainfo describes it.
        for s in reversed(range(len(per_scale))):
            out = super().forward(
                dict(inputs=list(per_scale[s]),
                     data_samples=data['data_samples']), training)
            normalised[s] = out['inputs']
        return dict(inputs=normalised, data_samples=out['data_samples'])
