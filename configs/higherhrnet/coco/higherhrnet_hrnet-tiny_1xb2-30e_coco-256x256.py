# A tiny HigherHRNet (branch widths 8/16/32/64, one block per branch) at
# 256x256 for CPU smoke runs: the tests and the overfit benchmark (the quick
# start derives a wider one from it, configs/higherhrnet/synthetic/). Same
# layout as the official tiny parity fixture. It defaults to
# the four real COCO val images in ../shared/data/coco; point data_root /
# ann_file elsewhere with --cfg-options.
_base_ = ['./higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py']

input_size = (256, 256)
codec = dict(
    _base_.codec, input_size=input_size, heatmap_sizes=[(64, 64), (128, 128)])

model = dict(
    backbone=dict(
        extra=dict(
            stage2=dict(num_blocks=(1, 1), num_channels=(8, 16)),
            stage3=dict(
                num_modules=1, num_blocks=(1, 1, 1), num_channels=(8, 16, 32)),
            stage4=dict(
                num_modules=1,
                num_blocks=(1, 1, 1, 1),
                num_channels=(8, 16, 32, 64)))),
    head=dict(
        in_channels=8,
        deconv_out_channels=(8, ),
        num_basic_blocks=2,
        decoder=codec),
    test_cfg=dict(flip_test=False))

train_pipeline = [
    dict(type='LoadImageOrReport', on_error='raise'),
    dict(_base_.train_pipeline[1], input_size=input_size),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LoadImageOrReport', on_error='report'),
    dict(_base_.val_pipeline[1], input_size=input_size),
    _base_.val_pipeline[2],
]

train_cfg = dict(max_epochs=30, val_interval=30)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1.5e-3))
param_scheduler = [
    dict(
        type='LinearLR', begin=0, end=10, start_factor=0.1, by_epoch=False)
]
auto_scale_lr = dict(base_batch_size=2)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(save_best=None, interval=10, max_keep_ckpts=2))

data_root = '../shared/data/coco/'
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='test_coco.json',
        data_prefix=dict(img=''),
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='test_coco.json',
        data_prefix=dict(img=''),
        pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'test_coco.json')
test_evaluator = val_evaluator
