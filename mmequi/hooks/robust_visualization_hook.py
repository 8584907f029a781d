"""Pictures of a robust test run, drawn by a hook beside the codebase's own visualization hook."""
import os
import os.path as osp
import tempfile
from typing import Optional

import cv2
import mmcv
import numpy as np
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from mmequi.evaluation.robust_records import per_image_metrics


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
def image_metric(prediction, sample):
    """The per-image figures as a short panel title."""
    figures = per_image_metrics(prediction, sample)
    if 'mIoU' in figures:
        return f"mIoU {figures['mIoU']:.1f}, acc {figures['aAcc']:.1f}"
    if 'detections' in figures:
        return f"{figures['detections']} boxes >= 0.3 ({figures['gt_boxes']} true)"
    return ''


@HOOKS.register_module()
class RobustVisualizationHook(Hook):
    """After each test iteration of a robust run (the wrapper kept each stage's image): with ``show_dir``, one PNG per
    image, ground truth | each stage's prediction | each perturbation, side by side; with ``paint_inputs``, the image
    the model predicted on is written under the log dir and the sample's ``img_path`` pointed at it, so the
    codebase's visualization hook (mmseg's / mmdet's, which runs after this one) paints that image.
    ``RobustTestHook`` registers it when a run asks for pictures."""
    priority = 'ABOVE_NORMAL'  # after the metrics have read the samples, before the codebase's painter (NORMAL)

    def __init__(self, show_dir: Optional[str] = None, paint_inputs: bool = False):
        self.show_dir, self.paint_inputs = show_dir, bool(paint_inputs)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        for sample in outputs or []:
            if self.show_dir is not None:
                os.makedirs(self.show_dir, exist_ok=True)
                name = osp.splitext(osp.basename(sample.metainfo.get('img_path', f'{batch_idx}.png')))[0]
                picture = self.side_by_side(runner.visualizer, model, sample)
                mmcv.imwrite(picture[..., ::-1], osp.join(self.show_dir, f'{name}.png'))
            if self.paint_inputs:
                self.point_at_model_input(runner, sample)

    def side_by_side(self, visualizer, model, sample):
        """One RGB picture: ground truth | each stage's prediction (titled with its per-image metric) | each
        perturbation (attacked − clean, purified − attacked), amplified to be seen."""
        images = {stage: self.original_size_rgb(image, sample) for stage, image in sample.robust_images.items()}
        panels = [titled(paint(visualizer, 'ground truth', images['clean'], sample, gt=True), 'ground truth')]
        for stage, rgb in images.items():
            prediction = model.predict_pixels(model.to_pixels(sample.robust_images[stage]), sample)
            title = f'{stage}: {image_metric(prediction, sample)}'
            panels.append(titled(paint(visualizer, stage, rgb, prediction), title))
        stages = list(images)
        for before, after in zip(stages, stages[1:]):
            difference = images[after].astype(np.float32) - images[before].astype(np.float32)
            gain = 127 / max(float(np.abs(difference).max()), 1.0)
            panels.append(titled(np.clip(128 + difference * gain, 0, 255).astype(np.uint8),
                                 f'{after} - {before} (x{gain:.0f})'))
        return np.concatenate(panels, axis=1)

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
