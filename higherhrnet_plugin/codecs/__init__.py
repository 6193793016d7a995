from .ae_grouping import AEGroupingConfig, group_keypoints
from .multi_resolution_ae import MultiResolutionAssociativeEmbedding

__all__ = [
    'AEGroupingConfig', 'group_keypoints', 'MultiResolutionAssociativeEmbedding'
]
