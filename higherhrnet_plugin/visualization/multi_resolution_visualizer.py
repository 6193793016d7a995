"""MMPose's visualiser, for heatmaps at several resolutions."""
from typing import Optional

import numpy as np
import torch
from mmengine.structures import PixelData
from mmpose.registry import VISUALIZERS
from mmpose.visualization import PoseLocalVisualizer


@VISUALIZERS.register_module()
class MultiResolutionPoseVisualizer(PoseLocalVisualizer):
    """:class:`~mmpose.visualization.PoseLocalVisualizer` that also draws
    the per-resolution heatmaps of HigherHRNet's targets.

    ``MultiResolutionAssociativeEmbedding`` encodes one heatmap array per
    output resolution, so the packed ``gt_fields.heatmaps`` is a list of
    (K, h_i, w_i) arrays, which MMPose's visualiser cannot draw (e.g. in
    ``tools/misc/browse_dataset.py``). Here each resolution is drawn like
    MMPose draws one heatmap (maximum over keypoints, overlaid on the
    image) and the drawings are stacked from the lowest resolution down.
    Everything else, including single heatmaps, is MMPose's.
    """

    def _draw_instance_heatmap(self,
                               fields: PixelData,
                               overlaid_image: Optional[np.ndarray] = None):
        heatmaps = fields.get('heatmaps')
        if not isinstance(heatmaps, (list, tuple)):
            return super()._draw_instance_heatmap(fields, overlaid_image)
        drawn = []
        for level in heatmaps:
            level = torch.as_tensor(np.asarray(level))
            if level.dim() == 3:
                level = level.max(dim=0).values
            drawn.append(self.draw_featmap(level[None], overlaid_image))
        return np.concatenate(drawn, axis=0) if drawn else None
