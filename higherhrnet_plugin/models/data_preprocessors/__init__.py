from .multi_scale_preprocessor import MultiScalePoseDataPreprocessor

__all__ = ['MultiScalePoseDataPreprocessor']
