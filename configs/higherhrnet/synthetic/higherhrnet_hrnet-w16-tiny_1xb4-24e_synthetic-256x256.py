# The quick start's config (tools/quickstart.py): a small HigherHRNet trained
# from scratch on the synthetic people of
# higherhrnet_plugin.datasets.synthetic_coco in about five minutes on 2 idle
# CPU cores (1200 iterations of ~0.23 s), evaluated with CocoMetric on the
# held-out validation split (AP ~0.8 at the end, see README.md and the
# metafile beside this file). The quick start generates the data into
# data/synthetic_coco/ (train/ and val/ with COCO annotation files).
#
# Changes from the tiny config, each for learning in minutes from scratch:
# - widths 16/32/64/128 (tiny: 8/16/32/64) and a 16-channel head: the 8-channel
#   model stops improving early; stage 1 with one 32-channel bottleneck
#   (tiny: four of 64) pays for it;
# - one tag map shared by all keypoints (tag_per_keypoint=False, as in
#   Associative Embedding's 1-D tags): the people of one synthetic image are
#   told apart only by where they stand, which one map learns faster than 17;
# - 'max' push (a constant gradient where tags still coincide; the 'exp'
#   push's gradient vanishes there, so tags started near 0 stay stuck), push
#   weight 1e-2 and pull weight 2e-2 (1e-3: grouping barely trains in
#   minutes; a pull of 1e-2 ends at the same AP but is slower to get there,
#   0.75 against 0.79 after 16 epochs, with more limbs joining a neighbour;
#   3e-2 / 4e-2 end lower, 0.77 / 0.73; 5e-2 or more: the heatmaps learn
#   much slower);
# - no augmentation: the generator already draws every pose, size and
#   position, and horizontal flips would contradict the figures' side marks
#   (light on the person's left, dark on the right);
# - batch 4, Adam 2e-3, short warm-up, cosine decay over 24 epochs (50
#   iterations each; 16 epochs: AP ~0.73), validated every 4.
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
    head=dict(
        in_channels=16,
        tag_per_keypoint=False,
        deconv_out_channels=(16, ),
        loss=dict(
            tag_loss=dict(
                push_type='max', pull_weight=2e-2, push_weight=1e-2))),
    # people scoring less are dropped (demo, inferencer, metric alike)
    test_cfg=dict(flip_test=False, score_thr=0.3))

train_pipeline = [
    dict(type='LoadImageOrReport', on_error='raise'),
    # the identity: the images are already network-sized (256 x 256)
    dict(
        type='BottomupRandomAffine',
        input_size=input_size,
        shift_prob=0.,
        scale_prob=0.,
        rotate_prob=0.,
        shear_prob=0.),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=30, start_factor=0.05, by_epoch=False),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs,
        eta_min=1e-4,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True)
]
auto_scale_lr = dict(base_batch_size=4)
randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(save_best=None, interval=max_epochs, max_keep_ckpts=1))

data_root = 'data/synthetic_coco/'
train_dataloader = dict(
    batch_size=4,
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
val_evaluator = dict(
    ann_file=data_root + 'annotations/person_keypoints_val.json')
test_evaluator = val_evaluator
