# The Cityscapes-format demo FCN fine-tuned adversarially (issue #26, docs/method.md "Adversarial training"): every
# training image replaced by its PGD example (ε = 4/255 on 0–255 pixels, 3 steps of 2, random start), made in front
# of the data preprocessor against the model's own loss, from the clean demo checkpoint.
#   python tools/train.py configs/demo/fcn_r18-d8_synthetic-cityscapes_adv-pgd-eps4.py
_base_ = ['./fcn_r18-d8_synthetic-cityscapes.py']
custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)
custom_hooks = [dict(type='AdversarialTrainingHook', attack=dict(type='PGD', eps=4, step_size=2, steps=3), ratio=1.0)]
load_from = 'checkpoints/fcn_r18-d8_synthetic-cityscapes.pth'
max_iters = 600
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
