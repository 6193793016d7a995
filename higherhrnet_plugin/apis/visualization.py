"""Drawing a model's predictions with MMPose's visualiser, at any scale of
the image (a huge photo shrunk to a sane size, a small one enlarged)."""
from typing import Optional

import cv2
import numpy as np
from mmengine.structures import InstanceData, PixelData

from mmpose.structures import PoseDataSample

__all__ = ['build_visualizer', 'draw_prediction']


def build_visualizer(model,
                     radius: Optional[int] = None,
                     line_width: Optional[int] = None):
    """The visualiser of the model's config, with its dataset's keypoint
    names, skeleton and colours (``model.dataset_meta``).

    Args:
        model: a pose estimator from :func:`~.model.init_model`.
        radius (int, optional): keypoint radius (default: the config's).
        line_width (int, optional): skeleton line width (default: the
            config's).
    """
    from mmpose.registry import VISUALIZERS
    visualizer = VISUALIZERS.build(model.cfg.visualizer.copy())
    visualizer.set_dataset_meta(model.dataset_meta)
    if radius is not None:
        visualizer.radius = radius
    if line_width is not None:
        visualizer.line_width = line_width
    return visualizer


def draw_prediction(visualizer,
                    image: np.ndarray,
                    sample: PoseDataSample,
                    kpt_thr: float = 0.3,
                    scale: float = 1.0,
                    draw_heatmap: bool = False) -> np.ndarray:
    """The predicted people (and the heatmap) drawn on the image.

    Args:
        visualizer: from :func:`build_visualizer`.
        image (np.ndarray): the image the prediction is of, BGR (H, W, 3).
        sample (PoseDataSample): the prediction, keypoints in image pixels
            (as ``inference_bottomup`` returns it); with
            ``test_cfg.output_heatmaps`` its ``pred_fields.heatmaps``
            (K, H, W) cover the image (see
            :func:`~higherhrnet_plugin.models.postprocess.heatmaps_to_image`).
        kpt_thr (float): keypoints (and links) scoring below are not drawn.
        scale (float): draw on the image resized by this factor, e.g. < 1 to
            keep the drawing of a huge image small (area interpolation),
            > 1 to make a small one readable (bilinear).
        draw_heatmap (bool): draw the maximum of the heatmaps over the
            keypoints, blended with the image, below the skeletons (if the
            sample has heatmaps).

    Returns:
        np.ndarray: the drawing, BGR (h, w, 3) with ``(w, h)`` the image
        size times ``scale``, rounded; (2h, w, 3) with the heatmap.
    """
    if scale != 1:
        height, width = image.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(
            image, size,
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    pred = sample.pred_instances
    drawn_sample = PoseDataSample(metainfo=sample.metainfo)
    drawn_sample.pred_instances = InstanceData(
        keypoints=np.asarray(pred.keypoints) * scale,
        keypoint_scores=np.asarray(pred.keypoint_scores),
        keypoints_visible=np.asarray(
            pred.get('keypoints_visible', pred.keypoint_scores)))
    draw_heatmap = draw_heatmap and 'pred_fields' in sample
    if draw_heatmap:
        # the visualiser resizes the map onto the (scaled) drawing
        drawn_sample.pred_fields = PixelData(
            heatmaps=sample.pred_fields.heatmaps.max(dim=0, keepdim=True)[0])
    drawn = visualizer.add_datasample(
        'result',
        np.ascontiguousarray(image[..., ::-1]),
        data_sample=drawn_sample,
        draw_gt=False,
        draw_pred=True,
        draw_heatmap=draw_heatmap,
        draw_bbox=False,
        show=False,
        kpt_thr=kpt_thr)
    return np.ascontiguousarray(drawn[..., ::-1])
