# HigherHRNet-W32, 512x512 input, CrowdPose (14 keypoints).
# The flip index [1,0,3,2,5,4,7,6,9,8,11,10,12,13] comes from MMPose's
# CrowdPose metainfo.
_base_ = ['../coco/higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py']

# CrowdPose keypoints are grouped in index order.
codec = dict(_base_.codec, decode_keypoint_order=None)
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
