# HigherHRNet-W48, 512x512 input, COCO.
_base_ = ['./higherhrnet_hrnet-w32_8xb24-300e_coco-512x512.py']

# HRNet-W48 backbone: branch widths 48, 96, 192, 384.
model = dict(
    backbone=dict(
        extra=dict(
            stage2=dict(num_channels=(48, 96)),
            stage3=dict(num_channels=(48, 96, 192)),
            stage4=dict(num_channels=(48, 96, 192, 384)))),
    head=dict(in_channels=48, deconv_out_channels=(48, )))

train_dataloader = dict(batch_size=16)
auto_scale_lr = dict(base_batch_size=128)
