# Quick-start config: a small HigherHRNet trained in minutes on 2 CPU cores on
# the synthetic people of higherhrnet_plugin.datasets.synthetic_coco
# (tools/quickstart.py generates them into data/synthetic_coco/), evaluated
# with CocoMetric on the held-out validation split.
_base_ = ['../coco/higherhrnet_hrnet-tiny_1xb2-30e_coco-256x256.py']

input_size = (256, 256)
codec = dict(_base_.codec)

model = dict(
    backbone=dict(
        extra=dict(
            stage1=dict(num_blocks=(1, ), num_channels=(32, )),
            stage2=dict(num_channels=(16, 32)),
            stage3=dict(num_channels=(16, 32, 64)),
            stage4=dict(num_channels=(16, 32, 64, 128)))),
    head=dict(in_channels=16, deconv_out_channels=(16, )),
    test_cfg=dict(flip_test=False, score_thr=0.2))

train_pipeline = [
    dict(type='LoadImageOrReport', on_error='raise'),
    dict(
        type='BottomupRandomAffine',
        input_size=input_size,
        shift_factor=0.1,
        scale_factor=(0.75, 1.25),
        scale_type='short',
        rotate_factor=15,
        shear_prob=0.,
        distribution='uniform'),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]

train_cfg = dict(max_epochs=12, val_interval=3)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=3e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=30, start_factor=0.05, by_epoch=False),
    dict(type='CosineAnnealingLR', T_max=12, eta_min=1e-4, by_epoch=True,
         begin=0, end=12, convert_to_iter_based=True)
]
auto_scale_lr = dict(base_batch_size=8)
randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(save_best=None, interval=12, max_keep_ckpts=1))

data_root = 'data/synthetic_coco/'
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/person_keypoints_train.json',
        data_prefix=dict(img='train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/person_keypoints_val.json',
        data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/person_keypoints_val.json')
test_evaluator = val_evaluator
