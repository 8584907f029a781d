"""Seconds per training step, plain against adversarial, side by side: the two alternate in one process on the same
batches (a ratio, not absolute seconds: these machines are noisy).

    python tools/misc/adversarial_training_cost.py [CONFIG] [--iters 12]

CONFIG is a training config with an ``AdversarialTrainingHook`` (default: the Cityscapes-format demo's fine-tuning);
its attack is used, the hook itself is not.
"""
import argparse
import statistics
import time

import mmequi  # noqa: F401  (registers mmequi, before mmengine is first imported)
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmequi.training import AdversarialPreprocessor


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', nargs='?', default='configs/demo/fcn_r18-d8_synthetic-cityscapes_adv-pgd-eps4.py')
    parser.add_argument('--iters', type=int, default=12, help='steps of each kind (the first 2 are warm-up)')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    hook = next((h for h in cfg.get('custom_hooks', []) if h['type'] == 'AdversarialTrainingHook'), None)
    if hook is None:
        parser.error(f'{args.config} has no AdversarialTrainingHook in custom_hooks')
    cfg.custom_hooks = []
    cfg.work_dir = 'work_dirs/adversarial_training_cost'
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    runner = Runner.from_cfg(cfg)
    model = runner.model.train()
    optim = runner.build_optim_wrapper(cfg.optim_wrapper)
    plain = model.data_preprocessor
    makers = dict(plain=plain, adversarial=AdversarialPreprocessor(plain, model, hook['attack']))
    seconds = {name: [] for name in makers}
    batches = iter(runner.train_dataloader)
    for _ in range(args.iters):
        batch = next(batches)
        for name, preprocessor in makers.items():
            model.data_preprocessor = preprocessor
            start = time.perf_counter()
            model.train_step(batch, optim)
            seconds[name].append(time.perf_counter() - start)
    model.data_preprocessor = plain
    plain_s, adversarial_s = (statistics.median(seconds[name][2:]) for name in makers)
    print(f'plain {plain_s:.3f} s/step, adversarial {adversarial_s:.3f} s/step, ratio {adversarial_s / plain_s:.2f} '
          f'(median of {args.iters - 2} after 2 warm-up steps, {torch.get_num_threads()} threads, '
          f"attack {hook['attack']})")


if __name__ == '__main__':
    main()
