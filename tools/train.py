"""Train an mmseg or mmdet model from a config (the config's ``default_scope`` says which).

    python tools/train.py configs/demo/fcn_r18-d8_synthetic-cityscapes.py [--work-dir DIR] [--resume]
"""
import argparse

import mmequi  # noqa: F401  (registers mmequi, allow-lists checkpoint types)
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmequi.apis.config import load_config, parse_runner_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train an mmseg/mmdet model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', action='store_true', default=False,
                        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument('--amp', action='store_true', default=False, help='enable automatic-mixed-precision')
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    cfg.resume = args.resume
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    return runner


if __name__ == '__main__':
    main()
