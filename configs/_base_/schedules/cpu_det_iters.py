# Short from-scratch detection schedule for the demo (2 CPU cores): AdamW, linear warm-up, step decay, one
# validation at the end (configs that inherit default_runtime set the iteration-based hooks).
_base_ = ['mmdet::_base_/schedules/schedule_1x.py']
max_iters = 1500
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
                     clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=150),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75), int(max_iters * 0.9)], gamma=0.1)
]
randomness = dict(seed=0)
