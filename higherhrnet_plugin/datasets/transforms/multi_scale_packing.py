"""Packing of test inputs that hold one image per test scale."""
from mmpose.datasets.transforms import PackPoseInputs
from mmpose.datasets.transforms.formatting import image_to_tensor
from mmpose.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackMultiScalePoseInputs(PackPoseInputs):
    """``PackPoseInputs`` that keeps a list of images (one per test scale,
    as :class:`HigherHRNetResize` makes with ``aug_scales``) as a list of
    (3, h_s, w_s) tensors instead of stacking them, since their sizes differ.
    A single image is packed exactly as ``PackPoseInputs`` does.
    """

    def transform(self, results: dict) -> dict:
        images = results.get('img')
        if not isinstance(images, (list, tuple)):
            return super().transform(results)
        packed = super().transform(dict(results, img=images[0]))
        packed['inputs'] = [image_to_tensor(img) for img in images]
        return packed
