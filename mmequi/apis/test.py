"""Evaluate an mmseg or mmdet model (the config's ``default_scope`` says which).

    mmequi-test CONFIG [CHECKPOINT] [--attack NAME|none] [--defense NAME|none] [--attack-opts k=v ...]
        [--defense-opts k=v ...] [--work-dir DIR] [--out PATH] [--show] [--show-dir DIR] [--wait-time S] [--tta]
        [--cfg-options k=v ...] [--launcher pytorch]

Installed as the ``mmequi-test`` command (also ``python -m mmequi.apis.test`` and, in a checkout, ``python
tools/test.py``). CONFIG is a path or ``mmequi::<path>`` in the shipped configs (``mmequi::demo/<name>.py``).
``--attack`` / ``--defense`` pick the shipped ``_base_/attacks/NAME.py`` / ``_base_/defenses/NAME.py`` (or a
path to such a file; ``none`` turns it off) and run the model through mmequi's ``RobustTestHook``, so one model
config serves clean, attacked and defended runs. Metrics are printed and written as JSON under the work dir
(``metrics.json``; robust runs also write ``robustness.json``).
"""
import argparse
import gc
import json
import os
import os.path as osp

import torch
from mmengine.dist import is_main_process
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmequi  # noqa: F401  (registers mmequi, allow-lists checkpoint types)
from mmequi.apis.config import DictAction, load_config, parse_runner_args, set_robust_test, task_scope
from mmequi.evaluation import evaluate_dataset_images_only
from mmequi.utils.quiet import quiet_logger


def parse_args(argv=None):
    # allow_abbrev=False: '--show' must not be read as an abbreviation of '--show-dir'
    parser = argparse.ArgumentParser(description='Test (and evaluate) an mmseg/mmdet model', allow_abbrev=False)
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', nargs='?', help="checkpoint file (path or URL); default: the config's load_from")
    parser.add_argument('--work-dir', help='the dir to save evaluation results')
    parser.add_argument('--out', help='save the predictions: mmseg, a directory of label PNGs (format_only style, '
                        "as mmseg's --out); mmdet, a .pkl file of the results (as mmdet's --out)")
    parser.add_argument('--show', action='store_true', help='show the painted predictions in a window')
    parser.add_argument('--show-dir', help='save painted images in this directory (relative to the work dir); robust '
                        'runs save clean | attacked | purified side by side')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds each image is shown (--show)')
    parser.add_argument('--tta', action='store_true', help="test-time augmentation with the config's tta_model and "
                        'tta_pipeline (plain runs only: an attack or defense sees one input)')
    parser.add_argument('--attack', help='attack config: a name in the shipped _base_/attacks, a path, or none')
    parser.add_argument('--defense', help='defense config: a name in the shipped _base_/defenses, a path, or none')
    parser.add_argument('--feature', help='feature map of the equivariance: logits, decode, neck, neck.0, backbone.3, ...')
    parser.add_argument('--attack-cache', help='store attacked images there and reuse them in later runs with the '
                        'same attack, seed and images (e.g. attacked, then attacked + defense)')
    parser.add_argument('--run-json', help="write the run's outputs there as JSON (log_dir, metrics, robustness, "
                        'per_image): for tools that start test runs (mmequi.apis.cells), so none searches for them')
    parser.add_argument('--attack-opts', nargs='+', action=DictAction, default={},
                        help='override attack settings, e.g. eps=8 steps=10')
    parser.add_argument('--defense-opts', nargs='+', action=DictAction, default={},
                        help='override defense settings, e.g. num_views=4 steps=10')
    return parse_runner_args(parser, argv)


def enable_visualization(cfg, show_dir=None, show=False, wait_time=2):
    """Turn on the codebase's visualization hook: save its images to ``show_dir`` and/or ``show`` them."""
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise ValueError('--show / --show-dir need a visualization hook in default_hooks')
    hook['draw'] = True
    if show:
        hook.update(show=True, wait_time=wait_time)
    # A fixed name ('visualizer' in the mm base runtimes) would make a second run in one process reuse the first
    # run's visualizer and its save_dir; without it the runner names it after the experiment.
    cfg.visualizer.pop('name', None)
    if task_scope(cfg) == 'mmseg':  # SegVisualizationHook saves through the visualizer's save_dir
        hook['interval'] = 1  # every test image (its default draws one in 50)
        if show_dir:
            cfg.visualizer['save_dir'] = show_dir
    elif show_dir:  # DetVisualizationHook writes to test_out_dir
        hook['test_out_dir'] = show_dir


def save_predictions(cfg, runner, out):
    """``--out`` as mmseg's / mmdet's own test tools: label PNGs in a directory (mmseg) or a .pkl file (mmdet)."""
    if task_scope(cfg) == 'mmseg':
        for metric in runner.test_loop.evaluator.metrics:
            if hasattr(metric, 'output_dir'):
                metric.output_dir, metric.keep_results = out, True
        os.makedirs(out, exist_ok=True)
    else:
        from mmdet.evaluation import DumpDetResults
        runner.test_loop.evaluator.metrics.append(DumpDetResults(out_file_path=out))


def use_tta(cfg):
    """``--tta`` as mmseg's / mmdet's test tools: the config's ``tta_pipeline`` and ``tta_model`` around the model."""
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise ValueError('--tta needs tta_model and tta_pipeline in the config')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def cpu_distributed(cfg):
    """``--launcher pytorch`` without a GPU: mmengine's launcher would pin each rank to a CUDA device and give DDP
    ``device_ids``; join the process group over gloo here (the runner then keeps it) and wrap without devices.
    Returns whether it created the group."""
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None)
    if torch.distributed.is_initialized():
        return False
    torch.distributed.init_process_group('gloo')
    return True


def write_run_json(path, log_dir, metrics):
    """``--run-json``: where this run's outputs are (its log dir, per_image.jsonl or None) and its figures (metrics,
    robustness.json or {})."""
    robustness, per_image = osp.join(log_dir, 'robustness.json'), osp.join(log_dir, 'per_image.jsonl')
    robust = {}
    if osp.isfile(robustness):
        with open(robustness) as f:
            robust = json.load(f)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(dict(log_dir=osp.abspath(log_dir), metrics={k: float(v) for k, v in metrics.items()},
                       robustness=robust, per_image=osp.abspath(per_image) if osp.isfile(per_image) else None),
                  f, indent=2)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if args.checkpoint:
        cfg.load_from = args.checkpoint
    if not cfg.get('load_from'):
        raise ValueError(f'no checkpoint: pass one after the config or set load_from in {args.config}')
    robust = set_robust_test(cfg, args.attack, args.defense, args.attack_opts, args.defense_opts)
    if args.feature:
        if robust is None:
            raise ValueError('--feature needs a robust run (--attack and/or --defense)')
        robust['feature'] = args.feature
    if args.attack_cache:
        if robust is None or cfg.get('attack') is None:
            raise ValueError('--attack-cache needs an attack (--attack NAME)')
        robust['attack_cache'] = osp.abspath(args.attack_cache)
    if args.out and task_scope(cfg) == 'mmdet' and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out for a detector is a .pkl file (as mmdet\'s --out), got {args.out!r}')
    if args.tta:
        if robust is not None:
            raise ValueError('--tta cannot be combined with an attack or defense: they work on the one input the model '
                             'sees, and the attack would have to go through the augmentations and their merge')
        use_tta(cfg)
    show_dir = osp.join(osp.abspath(cfg.work_dir), args.show_dir) if args.show_dir else None  # absolute stays
    if robust is not None and show_dir:  # side-by-side clean | attacked | purified
        robust['show_dir'] = show_dir
    if args.show or (show_dir and robust is None):
        enable_visualization(cfg, None if robust is not None else show_dir, args.show, args.wait_time)
    own_group = args.launcher == 'pytorch' and not torch.cuda.is_available() and cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    quiet_logger(runner.logger)  # before the evaluator is built (mmequi/utils/quiet.py)
    if task_scope(cfg) == 'mmdet':  # a subset run (dataset indices) scores its own images only
        evaluate_dataset_images_only(runner.test_loop.evaluator.metrics, runner.test_loop.dataloader.dataset)
    if args.out:
        save_predictions(cfg, runner, osp.abspath(args.out))
    metrics = runner.test()
    if is_main_process():  # every rank has the metrics; one writes them
        out = osp.join(runner.log_dir, 'metrics.json')
        with open(out, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2)
        runner.logger.info(f'metrics written to {out}')
        if args.run_json:
            write_run_json(args.run_json, runner.log_dir, metrics)
    if own_group:  # gloo's threads must be joined before exit, else the process aborts ('terminate called without
        # an active exception'). The runner's DDP wrapper holds the group too, past destroy_process_group, until the
        # interpreter shuts down; there its gloo work can abort the process after every output was written (one
        # 2-process run in four on a small DDP model here): free it first.
        del runner
        gc.collect()
        torch.distributed.destroy_process_group()
    return metrics


def cli():
    """The ``mmequi-test`` console command (``main`` returns the metrics, which a console script would print)."""
    main()


if __name__ == '__main__':
    cli()
