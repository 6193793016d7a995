# HigherHRNet-W32, 640x640 input, COCO.
_base_ = ['./higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py']

input_size = (640, 640)
codec = dict(
    _base_.codec,
    input_size=input_size,
    heatmap_sizes=[(160, 160), (320, 320)])

model = dict(head=dict(decoder=codec))

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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
