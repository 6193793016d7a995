"""Inference helpers beside MMPose's ``inference_bottomup``: several images
per batch, and the network input of an image."""
from typing import List, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import Compose, pseudo_collate
from torch import Tensor

from mmpose.structures import PoseDataSample

ImageType = Union[str, np.ndarray]


def run_test_pipeline(model, images: Sequence[ImageType]) -> List[dict]:
    """The config's test pipeline on each image (a path or a BGR array), as
    ``inference_bottomup`` runs it."""
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    data = []
    for image in images:
        info = dict(img_path=image) if isinstance(image, str) else dict(
            img=image)
        data.append(pipeline(dict(info, **model.dataset_meta)))
    return data


def inference_bottomup_batch(model,
                             images: Sequence[ImageType],
                             batch_size: int = 4) -> List[PoseDataSample]:
    """``inference_bottomup`` for many images, ``batch_size`` at a time.

    Images of different sizes share a batch: the data preprocessor pads
    them to a common size and every image is post-processed within its own
    part (see :func:`~higherhrnet_plugin.models.postprocess.predict_people`).

    Args:
        model: a pose estimator from ``init_model`` (or
            :func:`~higherhrnet_plugin.deploy.init_onnx_model`).
        images (Sequence[str | np.ndarray]): paths or BGR images.
        batch_size (int): images per forward pass.

    Returns:
        List[PoseDataSample]: one per image, in order, keypoints in image
        pixels.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    results = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            data = run_test_pipeline(model, images[start:start + batch_size])
            results += model.test_step(pseudo_collate(data))
    return results


def network_inputs(model, image: ImageType) -> Union[Tensor, List[Tensor]]:
    """What the network sees for one image: the test pipeline and the data
    preprocessor's output, (1, 3, H, W), or one such tensor per test scale
    with multi-scale test."""
    batch = pseudo_collate(run_test_pipeline(model, [image]))
    return model.data_preprocessor(batch, training=False)['inputs']
