"""The hook that turns any mmseg/mmdet test run into a robustness run: two config lines, no code.

    custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)
    custom_hooks = [dict(type='RobustTestHook', attack=dict(type='PGD', eps=4, step_size=1, steps=50),
                         defense=dict(type='EquivariancePurifier'))]
"""
import json
import os.path as osp
import resource
from typing import Optional

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from mmequi.apis.config import stated_once
from mmequi.evaluation import EquivarianceMetric, RobustRecordMetric, evaluate_dataset_images_only
from mmequi.models import RobustModel, robust_model_for

from .robust_visualization_hook import RobustVisualizationHook

PAINTERS = ('SegVisualizationHook', 'DetVisualizationHook')  # the codebases' own, which paint the file at img_path


def peak_memory(model):
    """Peak memory of the run in MiB: CUDA memory allocated on the model's GPU, else the process's peak RSS."""
    device = next(model.parameters()).device
    if device.type == 'cuda':
        return dict(device=str(device), name=torch.cuda.get_device_name(device),
                    mib=torch.cuda.max_memory_allocated(device) / 2 ** 20)
    return dict(device='cpu (process peak RSS)', mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 10)


@HOOKS.register_module()  # mmengine's root registry: found by mmseg and mmdet runners alike
class RobustTestHook(Hook):
    """Wraps the runner's model in ``before_test`` (after the checkpoint is loaded) in the task's
    :class:`RobustModel` (``SegRobustModel`` for segmentors, ``DetRobustModel`` for detectors; inside a distributed
    wrapper, the wrapped module is replaced) and adds :class:`EquivarianceMetric` and :class:`RobustRecordMetric`
    (``per_image.jsonl``) to the test evaluator; with pictures asked for, it registers
    :class:`RobustVisualizationHook`. After the test, rank 0 writes ``robustness.json`` to the log dir: the
    settings, the metrics and the mean cost per image over every rank's images.

    Args:
        attack: an ``ATTACKS`` config (``dict(type='PGD', eps=4, step_size=1, steps=50)``, ε in 0–255 pixel units) or
            None for clean inputs. A config that states ``attack`` at its top level (an mmequi ``_base_/attacks``
            file) needs none here: that one is used, so ``--cfg-options attack.eps=8`` reaches it; stating both,
            differently, is refused.
        defense: a ``DEFENSES`` config (``dict(type='EquivariancePurifier')``) or None for an undefended model; the
            top-level ``defense`` as for ``attack``.
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
        self.model = self.records = None

    def before_test(self, runner):
        parent = runner.model
        inner = parent.module if is_model_wrapper(parent) else parent
        if isinstance(inner, RobustModel):
            raise ValueError('the model is already wrapped in a RobustModel: use one RobustTestHook per run')
        config = getattr(runner, 'cfg', None) or {}
        for kind in ('attack', 'defense'):  # one source: the config's top level, else this entry's own
            self.settings[kind] = stated_once(kind, self.settings[kind], config.get(kind))
        dataset = getattr(getattr(runner.test_loop, 'dataloader', None), 'dataset', None)
        paint_inputs = any(type(h).__name__ in PAINTERS and getattr(h, 'draw', False)
                           for h in getattr(runner, 'hooks', []))
        data_root = getattr(dataset, 'data_root', None)
        self.model = robust_model_for(inner)(inner, keep_images=self.show_dir is not None or paint_inputs,
                                             data_root=data_root, **self.settings)
        steps = getattr(getattr(dataset, 'pipeline', None), 'transforms', [])
        missing = self.model.missing_annotations(steps) if self.model.attack is not None and steps else None
        if missing:
            raise ValueError(missing)  # before the first image, not at it
        if is_model_wrapper(parent):
            parent.module = self.model
        else:
            runner.model = self.model
        metrics = runner.test_loop.evaluator.metrics
        if dataset is not None:  # a subset run scores its own images only
            evaluate_dataset_images_only(metrics, dataset)
        if self.settings['score'] and not any(isinstance(m, EquivarianceMetric) for m in metrics):
            metrics.append(EquivarianceMetric())
        self.records = RobustRecordMetric(out_dir=getattr(runner, 'log_dir', None), data_root=data_root,
                                          ignore_index=getattr(getattr(inner, 'decode_head', None), 'ignore_index',
                                                               255))
        metrics.append(self.records)
        if self.show_dir is not None or paint_inputs:  # inserted after this hook: the loop over hooks goes on
            runner.register_hook(RobustVisualizationHook(self.show_dir, paint_inputs))
        runner.logger.info(f'robust test: attack={self.model.attack!r}, defense={self.model.defense!r}, '
                           f'feature={self.model.feature!r}, seed={self.model.seed}')

    def after_test_epoch(self, runner, metrics=None):
        if not is_main_process():
            return
        # the config dicts that were used (a program can rebuild them) and what they built
        settings = dict(self.settings, attack_built=repr(self.model.attack), defense_built=repr(self.model.defense),
                        feature=self.model.feature, defense_feature=self.model.defense_feature,
                        score_scale='mean')  # the score is the mean cosine in [-1, 1] (docs/method.md), not the sum
        out = osp.join(runner.log_dir, 'robustness.json')
        with open(out, 'w') as f:
            json.dump(dict(settings=settings, metrics={k: float(v) for k, v in (metrics or {}).items()},
                           **self.records.summary, peak_memory=peak_memory(self.model)), f, indent=2, default=str)
        runner.logger.info(f'robustness results written to {out}')
