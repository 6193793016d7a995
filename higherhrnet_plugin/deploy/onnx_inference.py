"""Bottom-up pose estimation with an exported HigherHRNet on ONNX Runtime.

ONNX Runtime runs the network only (see :mod:`.onnx_export`); everything
around it is the plugin's own code, configured from the model config:

- resize: the config's ``HigherHRNetResize`` test transform (base scale and,
  with ``model.test_cfg.multiscale_test``, its ``aug_scales``);
- normalisation: ``model.data_preprocessor`` (mean, std, BGR -> RGB), the
  arithmetic of MMEngine's ``ImgDataPreprocessor``;
- flip test (``model.test_cfg.flip_test``): the normalised input mirrored,
  as ``BottomupPoseEstimator.predict`` does; the original and the flipped
  image run as one batch of two;
- aggregation: :func:`aggregate_test_outputs`, on the outputs split by
  :meth:`HigherHRNetHead.split_heatmaps_and_tags`;
- grouping: the codec's ``decode`` (``model.head.decoder``);
- keypoints mapped back to image pixels with the inverse of the resize, as
  ``BottomupPoseEstimator.add_pred_to_datasample`` does.
"""
import copy
import warnings
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from torch import Tensor

from mmpose.registry import KEYPOINT_CODECS, MODELS, TRANSFORMS
from ..models.utils.test_time_aggregation import aggregate_test_outputs


class OnnxPoseResult(NamedTuple):
    """People found in one image, in original image pixels."""
    keypoints: np.ndarray  # (N, K, 2)
    keypoint_scores: np.ndarray  # (N, K)
    scores: np.ndarray  # (N, ) person scores


def _find_test_resize(cfg: Config) -> dict:
    """The ``HigherHRNetResize`` entry of the config's test pipeline."""
    for dataloader in ('test_dataloader', 'val_dataloader'):
        pipeline = cfg.get(dataloader, {}).get('dataset', {}).get(
            'pipeline', [])
        for transform in pipeline:
            kind = transform.get('type')
            name = kind if isinstance(kind, str) else getattr(
                kind, '__name__', '')
            if name.split('.')[-1] == 'HigherHRNetResize':
                return transform
    raise ValueError('the config has no HigherHRNetResize in its test (or '
                     'val) pipeline')


def _dataset_meta(cfg: Config) -> dict:
    """Dataset metainfo as :func:`mmpose.apis.init_model` finds it."""
    from mmpose.apis.inference import dataset_meta_from_config
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    meta = dataset_meta_from_config(cfg, dataset_mode='train')
    if meta is None:
        warnings.warn('no dataset metainfo in the config: using COCO\'s')
        meta = parse_pose_metainfo(
            dict(from_file='configs/_base_/datasets/coco.py'))
    return meta


class OnnxHigherHRNet:
    """HigherHRNet inference with ONNX Runtime.

    Args:
        onnx_file (str): a graph written by :func:`export_onnx`.
        config (str | Config): the model config the graph was exported from
            (test pipeline, data preprocessor, head, decoder, test_cfg).
        providers (Sequence[str], optional): ONNX Runtime execution
            providers. Defaults to ``['CPUExecutionProvider']``.
        session_options (onnxruntime.SessionOptions, optional): e.g. to set
            the number of threads.

    Calling it with a BGR image (H, W, 3) returns an :class:`OnnxPoseResult`.
    """

    def __init__(self,
                 onnx_file: str,
                 config: Union[str, Config],
                 providers: Optional[Sequence[str]] = None,
                 session_options=None):
        import onnxruntime as ort

        cfg = config if isinstance(config, Config) else Config.fromfile(
            str(config))
        self.cfg = cfg
        self.test_cfg = dict(cfg.model.get('test_cfg', {}))
        self.resize = TRANSFORMS.build(copy.deepcopy(_find_test_resize(cfg)))

        pre = cfg.model.get('data_preprocessor', {})
        if pre.get('bgr_to_rgb', False) and pre.get('rgb_to_bgr', False):
            raise ValueError('data_preprocessor: bgr_to_rgb and rgb_to_bgr '
                             'cannot both be set')
        self.swap_channels = bool(
            pre.get('bgr_to_rgb', False) or pre.get('rgb_to_bgr', False))
        self.mean = None if pre.get('mean') is None else np.asarray(
            pre['mean'], np.float32)
        self.std = None if pre.get('std') is None else np.asarray(
            pre['std'], np.float32)
        self.pad_size_divisor = int(pre.get('pad_size_divisor', 1))

        # The head is built for its output layout only
        # (``split_heatmaps_and_tags``); its weights are not used.
        head_cfg = copy.deepcopy(cfg.model.head)
        decoder_cfg = head_cfg.get('decoder')
        if decoder_cfg is None:
            raise ValueError('the config has no model.head.decoder')
        head_cfg['decoder'] = None
        self.head = MODELS.build(head_cfg)
        self.codec = KEYPOINT_CODECS.build(decoder_cfg)

        self.flip_indices = None
        if self.test_cfg.get('flip_test', False):
            self.flip_indices = _dataset_meta(cfg).get('flip_indices')
            if self.flip_indices is None:
                raise ValueError('flip_test needs flip_indices in the '
                                 'dataset metainfo')

        self.session = ort.InferenceSession(
            str(onnx_file),
            sess_options=session_options,
            providers=list(providers or ['CPUExecutionProvider']))
        self.input_name = self.session.get_inputs()[0].name
        num_outputs = len(self.session.get_outputs())
        if num_outputs != len(self.head.with_ae):
            raise ValueError(
                f'{onnx_file} has {num_outputs} outputs but the head of the '
                f'config produces {len(self.head.with_ae)}')

    # -- preprocessing -------------------------------------------------
    def _normalise(self, img: np.ndarray) -> np.ndarray:
        """(h, w, 3) image -> (1, 3, h, w) float32 network input."""
        h, w = img.shape[:2]
        if h % self.pad_size_divisor or w % self.pad_size_divisor:
            raise ValueError(f'input {h}x{w} is not a multiple of '
                             f'pad_size_divisor={self.pad_size_divisor}')
        if self.swap_channels:
            img = img[..., ::-1]
        x = img.astype(np.float32)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def preprocess(self, image_bgr: np.ndarray) -> Tuple[List[np.ndarray],
                                                         Dict]:
        """Resize and normalise an image.

        Returns:
            tuple: one (1, 3, h_s, w_s) input per test scale (base scale
            first) and the metainfo of the base scale (``img_shape``,
            ``input_size``, ``input_center``, ``input_scale``).
        """
        if not isinstance(image_bgr, np.ndarray) or image_bgr.ndim != 3 \
                or image_bgr.shape[2] != 3:
            raise ValueError('expected a BGR image as an (H, W, 3) array, '
                             f'got {getattr(image_bgr, "shape", image_bgr)}')
        results = self.resize(
            dict(img=image_bgr, ori_shape=image_bgr.shape[:2]))
        images = results['img']
        multiscale = self.test_cfg.get('multiscale_test', False)
        if multiscale != isinstance(images, list):
            raise ValueError(
                'model.test_cfg.multiscale_test and the aug_scales of the '
                'test HigherHRNetResize must be set together')
        if not multiscale:
            images = [images]
        meta = {
            key: results[key]
            for key in ('img_shape', 'input_size', 'input_center',
                        'input_scale')
        }
        return [self._normalise(img) for img in images], meta

    # -- network and aggregation -----------------------------------------
    def run_network(self, inputs: np.ndarray) -> List[np.ndarray]:
        """Raw ONNX outputs (``output0``, ...) for a (B, 3, H, W) input."""
        return self.session.run(None, {self.input_name: inputs})

    def infer_maps(self, image_bgr: np.ndarray
                   ) -> Tuple[Tensor, Tensor, Dict]:
        """Aggregated maps of one image, the decoder's input.

        Returns:
            tuple: heatmaps (K, H, W) and tags (K, H, W, L') at the base
            input size, and the metainfo from :meth:`preprocess`.
        """
        inputs, meta = self.preprocess(image_bgr)
        flip_test = self.flip_indices is not None
        per_scale = []
        for x in inputs:
            if flip_test:
                x = np.concatenate([x, x[..., ::-1]])
            outputs = [torch.from_numpy(o) for o in self.run_network(x)]
            views = [[o[v:v + 1] for o in outputs]
                     for v in range(2 if flip_test else 1)]
            per_scale.append(
                [self.head.split_heatmaps_and_tags(v) for v in views])
        heatmaps, tags = aggregate_test_outputs(
            per_scale,
            base_size=meta['img_shape'],
            flip_indices=self.flip_indices,
            align_corners=self.test_cfg.get('align_corners', False))
        return heatmaps[0], tags[0], meta

    def __call__(self, image_bgr: np.ndarray) -> OnnxPoseResult:
        heatmaps, tags, meta = self.infer_maps(image_bgr)
        keypoints, keypoint_scores, scores = self.codec.decode(heatmaps, tags)
        # input pixels -> image pixels (BottomupPoseEstimator's inverse map)
        keypoints = keypoints / meta['input_size'] * meta['input_scale'] + \
            meta['input_center'] - 0.5 * meta['input_scale']
        return OnnxPoseResult(
            keypoints=np.asarray(keypoints),
            keypoint_scores=np.asarray(keypoint_scores),
            scores=np.asarray(scores))
