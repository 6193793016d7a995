# HigherHRNet-W32, 512x512 input, CrowdPose (14 keypoints).
# The flip index [1,0,3,2,5,4,7,6,9,8,11,10,12,13] comes from MMPose's
# CrowdPose metainfo.
_base_ = ['../coco/higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py']

# Grouping order of the official implementation, with which the official
# CrowdPose checkpoints were evaluated: its COCO order (head, shoulders, hips,
# then the limbs outwards) cut to 14 entries. It is not index order: index
# order groups the hips (6, 7) after the arms and can pair joints otherwise.
codec = dict(
    _base_.codec,
    decode_keypoint_order=[0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13])
model = dict(head=dict(num_keypoints=14, decoder=codec))

train_pipeline = [
    *_base_.train_pipeline[:3],
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]

dataset_type = 'CrowdPoseDataset'
data_root = 'data/crowdpose/'
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/mmpose_crowdpose_trainval.json',
        data_prefix=dict(img='images/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/mmpose_crowdpose_test.json',
        data_prefix=dict(img='images/')))
test_dataloader = val_dataloader

default_hooks = dict(checkpoint=dict(save_best='crowdpose/AP'))
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/mmpose_crowdpose_test.json',
    nms_mode='none',
    score_mode='bbox',
    use_area=False,
    iou_type='keypoints_crowd',
    prefix='crowdpose')
test_evaluator = val_evaluator
