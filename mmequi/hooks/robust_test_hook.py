"""The hook that turns any mmseg/mmdet test run into a robustness run: two config lines, no code.

    custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)
    custom_hooks = [dict(type='RobustTestHook', attack=dict(type='PGD', eps=4, step_size=1, steps=50),
                         defense=dict(type='EquivariancePurifier'))]
"""
import itertools
import json
import os
import os.path as osp
import resource
import tempfile
from typing import Optional

import cv2
import mmcv
import numpy as np
import torch
from mmengine.dist import all_gather_object, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from mmequi.apis.config import stated_once
from mmequi.evaluation import EquivarianceMetric, evaluate_dataset_images_only
from mmequi.evaluation.areas import class_areas, miou, pixel_accuracy
from mmequi.models import RobustModel, robust_model_for


def peak_memory(model):
    """Peak memory of the run in MiB: CUDA memory allocated on the model's GPU, else the process's peak RSS."""
    device = next(model.parameters()).device
    if device.type == 'cuda':
        return dict(device=str(device), name=torch.cuda.get_device_name(device),
                    mib=torch.cuda.max_memory_allocated(device) / 2 ** 20)
    return dict(device='cpu (process peak RSS)', mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 10)


def paint(visualizer, name, rgb, sample, gt=False):
    """The codebase visualizer's drawing of ``sample`` (its prediction, or its ground truth) on ``rgb``, at that size.
    It draws into a scratch file so that nothing is written to the visualizer's backends (no vis_data files)."""
    with tempfile.TemporaryDirectory() as scratch:
        visualizer.add_datasample(name, rgb, sample, draw_gt=gt, draw_pred=not gt, show=False,
                                  out_file=osp.join(scratch, 'panel.png'))
    return mmcv.imresize(visualizer.get_image(), rgb.shape[1::-1])


def titled(rgb, title):
    """``rgb`` under a white band with ``title``."""
    band = np.full((22, rgb.shape[1], 3), 255, np.uint8)
    cv2.putText(band, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, rgb], axis=0)


_MISSING = object()


def in_dataset_order(items, size=None):
    """Every rank's per-image ``items`` in dataset order and each image once: mmengine's DefaultSampler deals the
    images to the ranks in turn and repeats the first ones to give every rank as many, so, as mmengine's
    ``collect_results`` does for the metrics, interleave the ranks' lists and cut them to the dataset's ``size``."""
    ranks = all_gather_object(items)
    ordered = [x for turn in itertools.zip_longest(*ranks, fillvalue=_MISSING) for x in turn if x is not _MISSING]
    return ordered if size is None else ordered[:size]


def per_image_metrics(prediction, sample, ignore_index=255):
    """The image's own figures. Segmentation: pixel accuracy, mIoU over the classes in the label or the prediction,
    each of those classes' IoU (%) and its pixel areas [intersection, union, label] (what a dataset's aAcc, mIoU and
    mAcc over several images, or a worst case per image, are computed from). Detection: detections with score ≥ 0.3
    and ground-truth boxes."""
    if 'pred_sem_seg' in prediction and 'gt_sem_seg' in sample:
        predicted, label = prediction.pred_sem_seg.data[0].cpu(), sample.gt_sem_seg.data[0].cpu()
        valid = label != ignore_index
        areas = class_areas(predicted[valid], label[valid])
        return dict(aAcc=pixel_accuracy(areas), mIoU=miou(areas),
                    class_iou={c: 100 * i / u for c, (i, u, _) in areas.items()}, class_areas=areas)
    if 'pred_instances' in prediction:
        return dict(detections=int((prediction.pred_instances.scores >= 0.3).sum()),
                    gt_boxes=len(sample.gt_instances) if 'gt_instances' in sample else None)
    return {}


def image_metric(prediction, sample):
    """The per-image figures as a short panel title."""
    figures = per_image_metrics(prediction, sample)
    if 'mIoU' in figures:
        return f"mIoU {figures['mIoU']:.1f}, acc {figures['aAcc']:.1f}"
    if 'detections' in figures:
        return f"{figures['detections']} boxes >= 0.3 ({figures['gt_boxes']} true)"
    return ''


@HOOKS.register_module()  # mmengine's root registry: found by mmseg and mmdet runners alike
class RobustTestHook(Hook):
    """Wraps the runner's model in ``before_test`` (after the checkpoint is loaded) in the task's
    :class:`RobustModel` (``SegRobustModel`` for segmentors, ``DetRobustModel`` for detectors), adds
    :class:`EquivarianceMetric` to the test evaluator, and writes ``robustness.json`` (settings and metrics) to
    the run's log dir. Inside a distributed wrapper, the wrapped module is replaced; ``robustness.json`` is written
    once, by rank 0, with the image counts and timings of all ranks.

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
        self.paint_inputs = False  # set in before_test when a codebase visualization hook draws
        self.model = None
        self.seconds, self.passes, self.images = [], [], []

    def before_test(self, runner):
        parent = runner.model
        inner = parent.module if is_model_wrapper(parent) else parent
        if isinstance(inner, RobustModel):
            raise ValueError('the model is already wrapped in a RobustModel: use one RobustTestHook per run')
        config = getattr(runner, 'cfg', None) or {}
        for kind in ('attack', 'defense'):  # one source: the config's top level, else this entry's own
            self.settings[kind] = stated_once(kind, self.settings[kind], config.get(kind))
        dataset = getattr(getattr(runner.test_loop, 'dataloader', None), 'dataset', None)
        # mmseg's / mmdet's visualization hooks paint the file at img_path: point them at the input the model saw
        self.paint_inputs = any(type(h).__name__ in ('SegVisualizationHook', 'DetVisualizationHook')
                                and getattr(h, 'draw', False) for h in getattr(runner, 'hooks', []))
        self.model = robust_model_for(inner)(inner, keep_images=self.show_dir is not None or self.paint_inputs,
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
        # one entry per image, empty where there is nothing to count (the distributed cut in after_test_epoch is by
        # position)
        self.seconds += [sample.get('robust_seconds') or {} for sample in outputs or []]
        self.passes += [sample.get('robust_passes') or {} for sample in outputs or []]
        self.images += [self.image_record(sample) for sample in outputs or []]
        if self.paint_inputs and outputs:  # the metrics have read the samples already; the painters come next
            for sample in outputs:
                self.point_at_model_input(runner, sample)
        if self.show_dir is None or not outputs:
            return
        os.makedirs(self.show_dir, exist_ok=True)
        for sample in outputs:
            name = osp.splitext(osp.basename(sample.metainfo.get('img_path', f'{batch_idx}.png')))[0]
            picture = self.side_by_side(runner.visualizer, sample)
            mmcv.imwrite(picture[..., ::-1], osp.join(self.show_dir, f'{name}.png'))

    def side_by_side(self, visualizer, sample):
        """One RGB picture: ground truth | each stage's prediction (titled with its per-image metric) | each
        perturbation (attacked − clean, purified − attacked), amplified to be seen."""
        images = {stage: self.original_size_rgb(image, sample) for stage, image in sample.robust_images.items()}
        panels = [titled(paint(visualizer, 'ground truth', images['clean'], sample, gt=True), 'ground truth')]
        for stage, rgb in images.items():
            prediction = self.model.predict_pixels(self.model.to_pixels(sample.robust_images[stage]), sample)
            title = f'{stage}: {image_metric(prediction, sample)}'
            panels.append(titled(paint(visualizer, stage, rgb, prediction), title))
        stages = list(images)
        for before, after in zip(stages, stages[1:]):
            difference = images[after].astype(np.float32) - images[before].astype(np.float32)
            gain = 127 / max(float(np.abs(difference).max()), 1.0)
            panels.append(titled(np.clip(128 + difference * gain, 0, 255).astype(np.uint8),
                                 f'{after} - {before} (x{gain:.0f})'))
        return np.concatenate(panels, axis=1)

    def image_record(self, sample):
        """One line of ``per_image.jsonl``: the image, its figures, its equivariance score per stage, its cost."""
        return dict(img_path=self.model.relative_path(sample), img_id=sample.metainfo.get('img_id'),
                    metrics=per_image_metrics(sample, sample, getattr(getattr(self.model.module, 'decode_head', None),
                                                                      'ignore_index', 255)),
                    equivariance=sample.get('equivariance_scores', {}), seconds=sample.get('robust_seconds', {}),
                    passes=sample.get('robust_passes', {}))

    @staticmethod
    def original_size_rgb(image, sample):
        """A kept C×H×W BGR uint8 image -> H×W×3 RGB array at the sample's original size (where predictions
        live)."""
        rgb = image.permute(1, 2, 0).numpy()[..., ::-1].copy()
        height, width = sample.metainfo.get('ori_shape', rgb.shape[:2])
        return mmcv.imresize(rgb, (width, height))

    def point_at_model_input(self, runner, sample):
        """Write the image the model predicted on (purified, else attacked, else clean) under the log dir, at the
        original size, and set ``img_path`` to it, so the codebase's visualization hook paints that image."""
        image = list(sample.robust_images.values())[-1]
        path = osp.join(runner.log_dir, 'model_inputs', osp.basename(sample.metainfo.get('img_path', 'image.png')))
        os.makedirs(osp.dirname(path), exist_ok=True)
        mmcv.imwrite(self.original_size_rgb(image, sample)[..., ::-1], path)
        sample.set_metainfo(dict(img_path=path))

    def after_test_epoch(self, runner, metrics=None):
        # every rank's images (a single process is a world of one), each image once
        dataset = getattr(getattr(getattr(runner, 'test_loop', None), 'dataloader', None), 'dataset', None)
        size = len(dataset) if dataset is not None else None
        self.seconds, self.passes, self.images = (in_dataset_order(x, size)
                                                  for x in (self.seconds, self.passes, self.images))
        if not is_main_process():
            return
        # the config dicts that were used (a program can rebuild them) and what they built
        settings = dict(self.settings, attack_built=repr(self.model.attack), defense_built=repr(self.model.defense),
                        feature=self.model.feature, defense_feature=self.model.defense_feature,
                        score_scale='mean')  # the score is the mean cosine in [-1, 1] (docs/method.md), not the sum
        with open(osp.join(runner.log_dir, 'per_image.jsonl'), 'w') as f:
            f.writelines(json.dumps(record, default=str) + '\n' for record in self.images)
        seconds = {key: float(np.mean([s[key] for s in self.seconds if key in s]))
                   for key in ('attack', 'defense') if any(key in s for s in self.seconds)}
        counted = [p for p in self.passes if p]
        passes = {key: float(np.mean([p[key] for p in counted])) for key in counted[0]} if counted else {}
        out = osp.join(runner.log_dir, 'robustness.json')
        with open(out, 'w') as f:
            json.dump(dict(settings=settings, metrics={k: float(v) for k, v in (metrics or {}).items()},
                           seconds_per_image=seconds, passes_per_image=passes, images=len(self.images),
                           peak_memory=peak_memory(self.model)),
                      f, indent=2, default=str)
        runner.logger.info(f'robustness results written to {out}')
