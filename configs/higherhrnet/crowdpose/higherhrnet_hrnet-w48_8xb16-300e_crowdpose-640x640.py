# HigherHRNet-W48, 640x640 input, CrowdPose (14 keypoints).
_base_ = ['./higherhrnet_hrnet-w32_8xb24-300e_crowdpose-512x512.py']

input_size = (640, 640)
codec = dict(
    _base_.codec,
    input_size=input_size,
    heatmap_sizes=[(160, 160), (320, 320)])

# HRNet-W48 backbone: branch widths 48, 96, 192, 384.
model = dict(
    backbone=dict(
        extra=dict(
            stage2=dict(num_channels=(48, 96)),
            stage3=dict(num_channels=(48, 96, 192)),
            stage4=dict(num_channels=(48, 96, 192, 384)))),
    head=dict(in_channels=48, deconv_out_channels=(48, ), decoder=codec))

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
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
auto_scale_lr = dict(base_batch_size=128)
