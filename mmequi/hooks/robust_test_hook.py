"""The hook that turns any mmseg/mmdet test run into a robustness run: two config lines, no code.

    custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)
    custom_hooks = [dict(type='RobustTestHook', attack=dict(type='PGD', eps=4, step_size=1, steps=50),
                         defense=dict(type='EquivariancePurifier'))]
"""
import json
import os
import os.path as osp
import resource
from typing import Optional

import mmcv
import numpy as np
import torch
from mmengine.dist import all_gather_object, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from mmequi.evaluation import EquivarianceMetric, evaluate_dataset_images_only
from mmequi.models import RobustModel, robust_model_for


def peak_memory(model):
    """Peak memory of the run in MiB: CUDA memory allocated on the model's GPU, else the process's peak RSS."""
    device = next(model.parameters()).device
    if device.type == 'cuda':
        return dict(device=str(device), mib=torch.cuda.max_memory_allocated(device) / 2 ** 20)
    return dict(device='cpu (process peak RSS)', mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 10)


@HOOKS.register_module()  # mmengine's root registry: found by mmseg and mmdet runners alike
class RobustTestHook(Hook):
    """Wraps the runner's model in ``before_test`` (after the checkpoint is loaded) in the task's
    :class:`RobustModel` (``SegRobustModel`` for segmentors, ``DetRobustModel`` for detectors), adds
    :class:`EquivarianceMetric` to the test evaluator, and writes ``robustness.json`` (settings and metrics) to
    the run's log dir. Inside a distributed wrapper, the wrapped module is replaced; ``robustness.json`` is written
    once, by rank 0, with the image counts and timings of all ranks.

    Args:
        attack: an ``ATTACKS`` config (``dict(type='PGD', eps=4, step_size=1, steps=50)``, ε in 0–255 pixel units) or
            None for clean inputs.
        defense: a ``DEFENSES`` config (``dict(type='EquivariancePurifier')``) or None for an undefended model.
        feature, seed, score: as :class:`RobustModel`.
        show_dir: write side-by-side PNGs (clean | attacked | purified, each with its prediction) there.
        attack_cache, feature_window: as :class:`RobustModel` (store and reuse attacked images; features of large
            inputs window by window).

    Example (in an mmseg/mmdet test config)::

        custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)
        custom_hooks = [dict(type='RobustTestHook', attack=dict(type='PGD', eps=4, step_size=1, steps=50),
                             defense=dict(type='EquivariancePurifier'))]
    """
    priority = 'VERY_HIGH'  # wrap before any other hook looks at the model

    def __init__(self, attack: Optional[dict] = None, defense: Optional[dict] = None, feature: Optional[str] = None,
                 seed: int = 0, score: bool = True, show_dir: Optional[str] = None, attack_cache: Optional[str] = None,
                 feature_window: Optional[dict] = None):
        self.settings = dict(attack=attack, defense=defense, feature=feature, seed=seed, score=score,
                             attack_cache=attack_cache, feature_window=feature_window)
        self.show_dir = show_dir
        self.model = None
        self.seconds, self.passes = [], []

    def before_test(self, runner):
        parent = runner.model
        inner = parent.module if is_model_wrapper(parent) else parent
        if isinstance(inner, RobustModel):
            raise ValueError('the model is already wrapped in a RobustModel: use one RobustTestHook per run')
        dataset = getattr(getattr(runner.test_loop, 'dataloader', None), 'dataset', None)
        self.model = robust_model_for(inner)(inner, keep_images=self.show_dir is not None,
                                             data_root=getattr(dataset, 'data_root', None), **self.settings)
        if is_model_wrapper(parent):
            parent.module = self.model
        else:
            runner.model = self.model
        metrics = runner.test_loop.evaluator.metrics
        if dataset is not None:  # a subset run scores its own images only
            evaluate_dataset_images_only(metrics, dataset)
        if self.settings['score'] and not any(isinstance(m, EquivarianceMetric) for m in metrics):
            metrics.append(EquivarianceMetric())
        runner.logger.info(f'robust test: attack={self.model.attack!r}, defense={self.model.defense!r}, '
                           f'feature={self.model.feature!r}, seed={self.model.seed}')

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.seconds += [sample.robust_seconds for sample in outputs or [] if 'robust_seconds' in sample]
        self.passes += [sample.robust_passes for sample in outputs or [] if sample.get('robust_passes')]
        if self.show_dir is None or not outputs:
            return
        os.makedirs(self.show_dir, exist_ok=True)
        visualizer = runner.visualizer
        for sample in outputs:
            panels = []
            for stage, image in sample.robust_images.items():
                prediction = self.model.predict_pixels(self.model.to_pixels(image), sample)
                rgb = image.permute(1, 2, 0).numpy()[..., ::-1].copy()  # BGR tensor -> RGB array
                height, width = sample.metainfo.get('ori_shape', rgb.shape[:2])
                rgb = mmcv.imresize(rgb, (width, height))  # predictions are at the original resolution
                visualizer.add_datasample(stage, rgb, prediction, draw_gt=False, draw_pred=True, show=False)
                panels.append(mmcv.imresize(visualizer.get_image(), rgb.shape[1::-1]))
            name = osp.splitext(osp.basename(sample.metainfo.get('img_path', f'{batch_idx}.png')))[0]
            mmcv.imwrite(np.concatenate(panels, axis=1)[..., ::-1], osp.join(self.show_dir, f'{name}.png'))

    def after_test_epoch(self, runner, metrics=None):
        # every rank's images (one list per rank; a single process is a world of one)
        self.seconds = [s for rank in all_gather_object(self.seconds) for s in rank]
        self.passes = [p for rank in all_gather_object(self.passes) for p in rank]
        if not is_main_process():
            return
        settings = dict(self.settings, attack=repr(self.model.attack), defense=repr(self.model.defense),
                        feature=self.model.feature, defense_feature=self.model.defense_feature)
        seconds = {key: float(np.mean([s[key] for s in self.seconds if key in s]))
                   for key in ('attack', 'defense') if any(key in s for s in self.seconds)}
        passes = {key: float(np.mean([p[key] for p in self.passes])) for key in self.passes[0]} if self.passes else {}
        out = osp.join(runner.log_dir, 'robustness.json')
        with open(out, 'w') as f:
            json.dump(dict(settings=settings, metrics={k: float(v) for k, v in (metrics or {}).items()},
                           seconds_per_image=seconds, passes_per_image=passes, images=len(self.seconds),
                           peak_memory=peak_memory(self.model)),
                      f, indent=2, default=str)
        runner.logger.info(f'robustness results written to {out}')
