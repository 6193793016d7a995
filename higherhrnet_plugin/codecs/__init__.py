from .ae_grouping import (AEGroupingConfig, batch_group_keypoints,
                          group_keypoints)
from .multi_resolution_ae import MultiResolutionAssociativeEmbedding

__all__ = [
    'AEGroupingConfig', 'batch_group_keypoints', 'group_keypoints',
    'MultiResolutionAssociativeEmbedding'
]
