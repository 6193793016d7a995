# HigherHRNet-W32, 512x512 input, COCO (Cheng et al., CVPR 2020).
# Hyperparameters follow MMPose 0.x's HigherHRNet-W32-512 (see docs/configs.md).
_base_ = ['mmpose::_base_/default_runtime.py']

custom_imports = dict(imports=['higherhrnet_plugin'], allow_failed_imports=False)

# runtime
train_cfg = dict(max_epochs=300, val_interval=10)

optim_wrapper = dict(optimizer=dict(type='Adam', lr=1.5e-3))

param_scheduler = [
    dict(
        type='LinearLR', begin=0, end=500, start_factor=0.001,
        by_epoch=False),  # warm-up
    dict(
        type='MultiStepLR',
        begin=0,
        end=300,
        milestones=[200, 260],
        gamma=0.1,
        by_epoch=True)
]

# automatically scaling LR based on the actual training batch size
auto_scale_lr = dict(base_batch_size=192)

default_hooks = dict(
    checkpoint=dict(save_best='coco/AP', rule='greater', interval=50))

# MMPose's visualiser, also drawing the targets of every resolution (e.g. in
# MMPose's tools/misc/browse_dataset.py)
visualizer = dict(type='MultiResolutionPoseVisualizer')

# codec settings: heatmaps at 1/4 and 1/2 of the input, sigma 2 at both;
# flipped samples encoded as the official training does (each output
# resolution mirrored about its own last column; 'input' mirrors the input,
# see docs/design.md)
input_size = (512, 512)
codec = dict(
    type='MultiResolutionAssociativeEmbedding',
    input_size=input_size,
    heatmap_sizes=[(128, 128), (256, 256)],
    sigma=2,
    tag_level=0,
    max_num_people=30,
    flip_about='output',
    decode_nms_kernel=5,
    decode_topk=30,
    decode_keypoint_thr=0.1,
    decode_tag_thr=1.0,
    # the official limit on the groups each joint type is matched against;
    # every group is returned (decode_max_instances=None), as officially
    decode_max_offered_groups=30,
    decode_max_instances=None,
    decode_keypoint_order=[
        0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16
    ],
    decode_adjust=True,
    decode_refine=True)

# model settings
model = dict(
    type='MultiScaleBottomupPoseEstimator',
    data_preprocessor=dict(
        type='MultiScalePoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        type='HRNet',
        in_channels=3,
        extra=dict(
            stage1=dict(
                num_modules=1,
                num_branches=1,
                block='BOTTLENECK',
                num_blocks=(4, ),
                num_channels=(64, )),
            stage2=dict(
                num_modules=1,
                num_branches=2,
                block='BASIC',
                num_blocks=(4, 4),
                num_channels=(32, 64)),
            stage3=dict(
                num_modules=4,
                num_branches=3,
                block='BASIC',
                num_blocks=(4, 4, 4),
                num_channels=(32, 64, 128)),
            stage4=dict(
                num_modules=3,
                num_branches=4,
                block='BASIC',
                num_blocks=(4, 4, 4, 4),
                num_channels=(32, 64, 128, 256),
                multiscale_output=False)),
        # No download at run time: to start from ImageNet weights, pass
        # --cfg-options model.backbone.init_cfg.type=Pretrained
        # model.backbone.init_cfg.checkpoint=/path/to/hrnet_w32.pth
        init_cfg=None,
    ),
    head=dict(
        type='HigherHRNetHead',
        in_channels=32,
        num_keypoints=17,
        tag_dim=1,
        tag_per_keypoint=True,
        with_ae=[True, False],
        deconv_out_channels=(32, ),
        deconv_kernel_sizes=(4, ),
        num_basic_blocks=4,
        cat_output=[True],
        final_kernel_size=1,
        loss=dict(
            type='HigherHRNetLoss',
            heatmap_loss=dict(type='KeypointMSELoss'),
            heatmap_weights=[1.0, 1.0],
            tag_loss=dict(
                type='PullPushTagLoss',
                push_type='exp',
                pull_weight=1e-3,
                push_weight=1e-3)),
        decoder=codec),
    # Multi-scale test (the paper's [2, 1, 0.5]): set multiscale_test=True
    # and aug_scales=[2, 0.5] in the test pipeline's HigherHRNetResize.
    test_cfg=dict(
        flip_test=True,
        multiscale_test=False,
        align_corners=False))

# base dataset settings
dataset_type = 'CocoDataset'
data_mode = 'bottomup'
data_root = 'data/coco/'

# pipelines
# The official augmentation (RandomAffineTransform of the HigherHRNet code:
# MAX_ROTATION 30, MIN/MAX_SCALE 0.75/1.5, 'short', MAX_TRANSLATE 40 = 0.2 of
# the crop, integer shifts); sampling='mmpose' gives BottomupRandomAffine's
# (see docs/training.md).
train_pipeline = [
    dict(type='LoadImageOrReport', on_error='raise'),
    dict(
        type='HigherHRNetRandomAffine',
        sampling='official',
        input_size=input_size,
        shift_factor=0.2,
        scale_factor=(0.75, 1.5),
        scale_type='short',
        rotate_factor=30,
        distribution='uniform'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]
test_meta_keys = ('id', 'img_id', 'img_path', 'crowd_index', 'ori_shape',
                  'img_shape', 'input_size', 'input_center', 'input_scale',
                  'flip', 'flip_direction', 'flip_indices', 'raw_ann_info',
                  'skeleton_links', 'aug_scales', 'load_error')
val_pipeline = [
    dict(type='LoadImageOrReport', on_error='report'),
    dict(type='HigherHRNetResize', input_size=input_size, size_factor=64),
    dict(type='PackMultiScalePoseInputs', meta_keys=test_meta_keys)
]

# data loaders
train_dataloader = dict(
    batch_size=24,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/person_keypoints_train2017.json',
        data_prefix=dict(img='train2017/'),
        pipeline=train_pipeline,
    ))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/person_keypoints_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=val_pipeline,
    ))
test_dataloader = val_dataloader

# evaluators
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/person_keypoints_val2017.json',
    nms_mode='none',
    score_mode='bbox',
)
test_evaluator = val_evaluator
