"""Drawing a model's predictions with MMPose's visualiser, at any scale of
the image (a huge photo shrunk to a sane size, a small one enlarged)."""
import contextlib
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.structures import InstanceData, PixelData

from mmpose.structures import PoseDataSample

__all__ = ['build_visualizer', 'draw_prediction', 'PERSON_COLOURS']

#: Distinct colours (RGB) for drawing each person in a colour of its own,
#: used in turn: a skeleton that jumps between figures shows at a glance.
PERSON_COLOURS: Tuple[Tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
    (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230))


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
                    draw_heatmap: bool = False,
                    person_colours: Optional[Sequence[Tuple[int, int,
                                                            int]]] = None
                    ) -> np.ndarray:
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
        person_colours (Sequence, optional): RGB colours given to the people
            in turn, each person's keypoints and links in one colour (e.g.
            :data:`PERSON_COLOURS`); None: the dataset's colours per keypoint
            and link.

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
    keypoints = np.asarray(pred.keypoints) * scale
    scores = np.asarray(pred.keypoint_scores)
    visible = np.asarray(pred.get('keypoints_visible', scores))
    if person_colours is None or not len(keypoints):
        layers = [(None, slice(None))]  # everyone in the dataset's colours
    else:
        layers = [(person_colours[i % len(person_colours)], slice(i, i + 1))
                  for i in range(len(keypoints))]
    drawn = np.ascontiguousarray(image[..., ::-1])
    heatmap_half = None
    for colour, people in layers:
        layer = PoseDataSample(metainfo=sample.metainfo)
        layer.pred_instances = InstanceData(
            keypoints=keypoints[people],
            keypoint_scores=scores[people],
            keypoints_visible=visible[people])
        with_heatmap = (draw_heatmap and heatmap_half is None
                        and 'pred_fields' in sample)
        if with_heatmap:
            # the visualiser resizes the map onto the (scaled) drawing
            layer.pred_fields = PixelData(
                heatmaps=sample.pred_fields.heatmaps.max(
                    dim=0, keepdim=True)[0])
        with _colours(visualizer, colour):
            out = visualizer.add_datasample(
                'result', drawn, data_sample=layer, draw_gt=False,
                draw_pred=True, draw_heatmap=with_heatmap, draw_bbox=False,
                show=False, kpt_thr=kpt_thr)
        if with_heatmap:
            # the heatmap comes below the drawing: set it aside and draw the
            # next people on the image only
            out, heatmap_half = np.split(out, [drawn.shape[0]])
        drawn = out
    if heatmap_half is not None:
        drawn = np.concatenate([drawn, heatmap_half])
    return np.ascontiguousarray(drawn[..., ::-1])


@contextlib.contextmanager
def _colours(visualizer, colour: Optional[Tuple[int, int, int]]):
    """Within the block the visualiser draws every keypoint and link in
    ``colour`` (None: unchanged)."""
    if colour is None:
        yield
        return
    saved = visualizer.kpt_color, visualizer.link_color
    num_keypoints = visualizer.dataset_meta['num_keypoints']
    visualizer.kpt_color = np.array([colour] * num_keypoints)
    visualizer.link_color = np.array([colour] * len(visualizer.skeleton))
    try:
        yield
    finally:
        visualizer.kpt_color, visualizer.link_color = saved
