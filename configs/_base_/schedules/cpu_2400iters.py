# Short from-scratch schedule for the demo models (2 CPU cores): AdamW + poly decay, one validation and one
# checkpoint at the end.
_base_ = ['mmseg::_base_/schedules/schedule_20k.py']
max_iters = 2400
optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4))
param_scheduler = [dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0)
