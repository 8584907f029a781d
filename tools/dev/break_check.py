"""Break the code on purpose, one line at a time, and check that a test notices (DEVELOPERS standard: a test must
fail when the thing it tests is broken).

Each entry of ``BREAKS`` replaces one exact piece of text of the attack, defense, transform, wrapper or metric code by
a small, realistic bug and names the tests that must catch it. The check copies the checkout (tracked and untracked,
not ignored files) to a temporary folder, applies one break at a time there, runs the named tests with pytest and
restores the file: the checkout itself is never edited. A break *survives* when its tests pass; the run exits 1 if
any break survived or could not be applied.

New attack or defense code adds its breaks here (``tests/test_break_list.py`` checks that every ``old`` text still
occurs exactly once in its file and that every named test exists).

Usage::

    python tools/dev/break_check.py              # every break (about 10 min on 2 cores)
    python tools/dev/break_check.py --list       # the breaks, numbered
    python tools/dev/break_check.py -k 'apgd|dag'  # the breaks whose name matches
"""
import argparse
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class Break(NamedTuple):
    name: str
    path: str  # relative to the repository root
    old: str  # occurs exactly once in ``path``
    new: str
    tests: Tuple[str, ...]  # pytest files or node ids (relative to the root), the one expected to fail first


T_REF = 'tests/test_reference_attacks.py'
T_BUG = 'tests/test_bug_classes.py'
T_ATT = 'tests/test_attacks.py'
T_APGD = 'tests/test_apgd_ensemble.py'
T_ADA = 'tests/test_adaptive_attacks.py'
T_SEG = 'tests/test_seg_robust.py'
T_DET = 'tests/test_det_robust.py'
T_TRF = 'tests/test_equivariance_transforms.py'
T_LOSS = 'tests/test_equivariance_loss.py'
T_PUR = 'tests/test_purifier.py'
T_TTA = 'tests/test_tta_defense.py'
T_BOX = 'tests/test_box_map.py'

BREAKS = [
    # ---- the shared loop (mmequi/loop.py) -------------------------------------------------------------------------
    Break('loop: L2 projection puts deltas inside the ball onto the sphere', 'mmequi/loop.py',
          "per_image_norm(delta, 2).clamp_min(_TINY)).clamp(max=1.0)", "per_image_norm(delta, 2).clamp_min(_TINY))",
          (T_REF, T_BUG)),
    Break('loop: L2 step normalised over the batch', 'mmequi/loop.py',
          "self.step_size * direction / per_image_norm(direction, 2).clamp_min(_TINY)",
          "self.step_size * direction / direction.norm(p=2).clamp_min(_TINY)", (T_REF, T_BUG)),
    Break('loop: L-inf step descends', 'mmequi/loop.py',
          "return delta + self.step_size * direction.sign()", "return delta - self.step_size * direction.sign()",
          (T_REF, T_ATT)),
    Break('loop: L-inf projection onto twice the box', 'mmequi/loop.py',
          "return delta.clamp(-eps, eps)", "return delta.clamp(-2 * eps, 2 * eps)", (T_ATT,)),
    Break('loop: direction from the gradient outside the valid region', 'mmequi/loop.py',
          "direction = self.direction(grad * valid, step, state, generator)",
          "direction = self.direction(grad, step, state, generator)", (T_BUG,)),
    Break('loop: pixels left out of range', 'mmequi/loop.py',
          "delta = (images + delta).clamp(*self.pixel_range) - images\n", "delta = delta\n", (T_ATT,)),
    Break('loop: padding perturbed', 'mmequi/loop.py', "        return delta * valid\n", "        return delta\n",
          (T_ATT,)),
    Break('loop: one-sided L-inf random start', 'mmequi/loop.py',
          "return (2 * random_tensor('uniform', images.shape, images, generator) - 1) * self.eps",
          "return random_tensor('uniform', images.shape, images, generator) * self.eps", (T_REF, T_BUG)),
    Break('loop: L2 random start always on the sphere', 'mmequi/loop.py',
          "radius = random_tensor('uniform', (images.shape[0], 1, 1, 1), images, generator) * self.eps",
          "radius = self.eps", (T_REF, T_BUG)),
    # ---- MIM, APGD --------------------------------------------------------------------------------------------------
    Break('mim: momentum reset every step', 'mmequi/attacks/mim.py',
          "state['momentum'] = self.momentum * state['momentum'] + normalised if 'momentum' in state else normalised",
          "state['momentum'] = normalised", (T_REF, T_ATT)),
    Break('mim: L2 instead of L1 normalisation', 'mmequi/attacks/mim.py',
          "normalised = grad / per_image_norm(grad, 1).clamp_min(1e-12)",
          "normalised = grad / per_image_norm(grad, 2).clamp_min(1e-12)", (T_REF, T_ATT)),
    Break('apgd: halving condition reversed', 'mmequi/attacks/apgd.py',
          "few_raises = raised <= self.rho * (k - last_mark)", "few_raises = raised >= self.rho * (k - last_mark)",
          (T_REF, T_APGD)),
    Break('apgd: momentum term with the wrong sign', 'mmequi/attacks/apgd.py',
          "(1 - alpha) * (delta - previous_delta)", "(1 - alpha) * (previous_delta - delta)", (T_REF, T_APGD)),
    Break('apgd: no restart from the best point after a halving', 'mmequi/attacks/apgd.py',
          "delta = torch.where(halve.view(shape), best, delta)", "delta = delta", (T_REF, T_APGD)),
    Break("apgd: restart with the current point's gradient", 'mmequi/attacks/apgd.py',
          "grad = torch.where(halve.view(shape), best_grad, grad)", "grad = grad", (T_REF, T_APGD)),
    Break("apgd: the best point's gradient never recorded", 'mmequi/attacks/apgd.py',
          "best_grad = torch.where(better.view(shape), grad, best_grad)", "best_grad = best_grad", (T_REF, T_APGD)),
    Break('apgd: momentum on the first step', 'mmequi/attacks/apgd.py',
          "alpha = self.alpha if k > 1 else 1.0", "alpha = self.alpha", (T_REF, T_APGD)),
    Break('apgd: first step eps instead of 2 eps', 'mmequi/attacks/apgd.py',
          "eta = images.new_full((images.shape[0],), 2 * eps)",
          "eta = images.new_full((images.shape[0],), eps)", (T_REF, T_APGD)),
    Break('apgd: the last iterate instead of the best', 'mmequi/attacks/apgd.py',
          "best = torch.where(better.view(shape), delta, best)", "best = delta", (T_REF, T_APGD)),
    Break('apgd: halving condition without the stuck rule', 'mmequi/attacks/apgd.py',
          "halve = few_raises | stuck", "halve = few_raises", (T_REF, T_APGD)),
    Break('apgd: no-improvement rule armed at the first checkpoint', 'mmequi/attacks/apgd.py',
          "halved_last = torch.ones_like(value, dtype=torch.bool)",
          "halved_last = torch.zeros_like(value, dtype=torch.bool)", (T_REF,)),
    Break('apgd: radius stages ignored', 'mmequi/attacks/apgd.py',
          "eps = self.eps * radius  # the stage's ball", "eps = self.eps  # the stage's ball", (T_APGD,)),
    # ---- segmentation losses, SegPGD, the SEA-style ensemble --------------------------------------------------------
    Break('seg loss: CosPGD weight differentiated', 'mmequi/attacks/seg_losses.py',
          "cosine = (label_p / probabilities.norm(dim=1).clamp_min(1e-12)).detach()",
          "cosine = (label_p / probabilities.norm(dim=1).clamp_min(1e-12))", (T_APGD,)),
    Break('seg loss: masked CE keeps the wrong pixels', 'mmequi/attacks/seg_losses.py',
          "correct = (logits.argmax(1) == labels) & valid\n    return (_ce(logits, labels, valid) * correct)",
          "correct = valid\n    return (_ce(logits, labels, valid) * correct)", (T_APGD,)),
    Break('seg loss: balanced CE over all classes, not those present', 'mmequi/attacks/seg_losses.py',
          "present = (counts > 0).sum(1).clamp_min(1).to(ce.dtype)",
          "present = ce.new_full((ce.shape[0],), float(logits.shape[1]))", (T_APGD,)),
    Break('seg loss: JS divergence without its second half', 'mmequi/attacks/seg_losses.py',
          "+ 0.5 * torch.log(2 / (1 + p))", "+ 0.0 * torch.log(2 / (1 + p))", (T_APGD,)),
    Break('segpgd: lambda runs to 1, not 1/2', 'mmequi/attacks/seg_losses.py',
          "lam = progress / 2", "lam = progress", (T_ATT,)),
    Break('ensemble: each image by its own mIoU, not the running total', 'mmequi/evaluation/areas.py',
          "scores = [miou(add_areas(total, areas)) for areas in options]",
          "scores = [miou(areas) for areas in options]", (T_BUG, T_APGD)),
    Break('ensemble: the least harmful candidate', 'mmequi/evaluation/areas.py',
          "return min(range(len(scores)), key=scores.__getitem__)",
          "return max(range(len(scores)), key=scores.__getitem__)", (T_APGD,)),
    Break('ensemble: running total never updated', 'mmequi/attacks/ensemble.py',
          "self._areas = add_areas(self._areas, counts[best])", "self._areas = self._areas", (T_BUG, T_APGD)),
    Break('ensemble: adaptive candidates judged undefended', 'mmequi/attacks/ensemble.py',
          "adv = context.defense.purify(adv, context.feature_fn, generator)", "adv = adv", (T_APGD,)),
    Break('areas: predicted and label areas swapped before mmseg computes the metrics', 'mmequi/evaluation/areas.py',
          "totals[0], totals[1], totals[3], totals[2], ['mIoU']", "totals[0], totals[1], totals[2], totals[3], ['mIoU']",
          ('tests/test_tools.py::test_merged_metrics_equal_mmseg_and_mmequi_metrics',)),
    Break('areas: per-image records count the ignored pixels', 'mmequi/evaluation/robust_records.py',
          "areas = class_areas(predicted[valid], label[valid])", "areas = class_areas(predicted, label)",
          ('tests/test_tools.py::test_merged_metrics_equal_mmseg_and_mmequi_metrics', T_SEG)),
    # ---- DAG ---------------------------------------------------------------------------------------------------------
    Break('dag: proposals already fooled still counted', 'mmequi/attacks/dag.py',
          "active = scores.argmax(1) == labels", "active = torch.ones_like(labels, dtype=torch.bool)", (T_BUG, T_DET)),
    Break('dag: adversarial label may be the true one', 'mmequi/attacks/dag.py',
          "shift = torch.randint(1, max(classes, 2)", "shift = torch.randint(0, max(classes, 2)", (T_BUG, T_DET)),
    Break('dag: margin reversed', 'mmequi/attacks/dag.py',
          "(scores[index, adversarial] - scores[index, labels])", "(scores[index, labels] - scores[index, adversarial])",
          (T_DET,)),
    # ---- adaptive attacks ------------------------------------------------------------------------------------------
    Break('equivariance-aware: the same views at every step', 'mmequi/attacks/adaptive.py',
          "call.memory['defense_objective'](adv, call.context.feature_fn, call.generator)",
          "call.memory['defense_objective'](adv, call.context.feature_fn, "
          "type(call.generator)().manual_seed(call.generator.initial_seed()))", (T_BUG, T_ADA)),
    Break('equivariance-aware: lowers the defense objective', 'mmequi/attacks/adaptive.py',
          "return super().loss(call, adv, step) + self.lam * self.defense_term(call, adv)",
          "return super().loss(call, adv, step) - self.lam * self.defense_term(call, adv)", (T_ADA,)),
    Break('bpda: one EOT draw', 'mmequi/attacks/adaptive.py',
          "for _ in range(self.eot)) / self.eot", "for _ in range(1)) / self.eot", (T_ADA,)),
    Break('bpda: forward skips the purifier', 'mmequi/attacks/adaptive.py',
          "return adv + (purified - adv).detach()", "return adv + 0 * (purified - adv).detach()", (T_ADA,)),
    # ---- transforms and the equivariance score ---------------------------------------------------------------------
    Break("colour jitter: contrast blends towards the mean of the channels, not of the grey image",
          'mmequi/equivariance/transforms.py',
          "(1 - params['contrast']) * _gray(x).mean((1, 2, 3), keepdim=True)",
          "(1 - params['contrast']) * x.mean((1, 2, 3), keepdim=True)", (T_BUG, T_TRF)),
    Break('colour jitter: missing BGR -> RGB swap', 'mmequi/equivariance/transforms.py',
          "        if self.channel_order == 'bgr':\n            rgb = rgb.flip(1)\n        ops",
          "        ops", (T_TRF,)),
    Break('colour jitter: grey weights in BGR order', 'mmequi/equivariance/transforms.py',
          "_GRAY_RGB = (0.299, 0.587, 0.114)", "_GRAY_RGB = (0.114, 0.587, 0.299)", (T_BUG, T_TRF)),
    Break('rotation: undone by rotating the same way again', 'mmequi/equivariance/transforms.py',
          "back = rotate(features, -angle)", "back = rotate(features, angle)", (T_TRF,)),
    Break('hflip: not undone', 'mmequi/equivariance/transforms.py',
          "return resize(features.flip(-1), out_size), full_mask(features, out_size)",
          "return resize(features, out_size), full_mask(features, out_size)", (T_TRF,)),
    Break('compose: undone in application order', 'mmequi/equivariance/transforms.py',
          "for (t, p), target in reversed(list(zip(steps, targets))):",
          "for (t, p), target in list(zip(steps, targets)):", (T_TRF,)),
    Break('invariance baseline: views inverted instead of pooled', 'mmequi/equivariance/objectives.py',
          "    align = staticmethod(pooled)", "    align = staticmethod(aligned)", (T_PUR, T_LOSS)),
    Break('score: masks ignored', 'mmequi/equivariance/loss.py',
          "score = score + _pair_cosine(a, b, ma * mb)", "score = score + _pair_cosine(a, b, torch.ones_like(ma))",
          (T_LOSS,)),
    Break('score: mean over the wrong number of pairs', 'mmequi/equivariance/loss.py',
          "score = score / (len(views) * (len(views) - 1) // 2 * len(reference))",
          "score = score / (len(views) * (len(views) - 1) * len(reference))", (T_LOSS,)),
    # ---- the purifier ------------------------------------------------------------------------------------------------
    Break('purifier: descends the objective', 'mmequi/defenses/base.py',
          "direction = grad / per_image_norm(grad, 2).clamp_min(1e-12)",
          "direction = -grad / per_image_norm(grad, 2).clamp_min(1e-12)", (T_PUR,)),
    Break('purifier: noise never annealed', 'mmequi/defenses/base.py',
          "anneal = (self.steps - 1 - step) / self.steps", "anneal = 1.0", (T_PUR,)),
    Break('purifier: the gate purifies the images above it', 'mmequi/defenses/purifiers.py',
          "todo = (self._scorer(images, feature_fn, generator) < self.gate)",
          "todo = (self._scorer(images, feature_fn, generator) >= self.gate)", (T_PUR,)),
    Break('equivariance-aware: the hinge keeps pulling past the gate', 'mmequi/attacks/adaptive.py',
          "return (score - defense.gate - self.gate_margin).clamp(max=0)",
          "return score - defense.gate - self.gate_margin", (T_ADA,)),
    # ---- the wrappers ------------------------------------------------------------------------------------------------
    Break('seg wrapper: padding not cropped from what the features see', 'mmequi/models/robust_model.py',
          "return inputs[..., :pixels.shape[-2], :pixels.shape[-1]]", "return inputs", (T_BUG, T_SEG)),
    Break('seg wrapper: padding offsets of the logits read in the wrong order', 'mmequi/models/seg_robust_model.py',
          "left, right, top, bottom = meta.get(", "top, bottom, left, right = meta.get(", (T_BUG, T_SEG)),
    Break('seg wrapper: logits not un-flipped', 'mmequi/models/seg_robust_model.py',
          "if meta.get('flip'):", "if False:", (T_BUG, T_SEG)),
    Break("seg wrapper: a query-based head's logits asked of _forward", 'mmequi/models/seg_robust_model.py',
          "        elif needs_samples(head):", "        elif False:",
          ('tests/test_zoo.py::test_a_query_based_head_gives_its_class_map_as_logits',)),
    Break("seg wrapper: PointRend's logits asked of its point head", 'mmequi/models/seg_robust_model.py',
          "                return head[0].forward(model.extract_feat(inputs))",
          "                return model._forward(inputs)",
          ('tests/test_zoo.py::test_a_cascade_with_a_point_head_gives_its_coarse_logits_and_a_dense_cascade_its_last',)),
    Break('seg wrapper: an auxiliary head output taken for the logits', 'mmequi/models/seg_robust_model.py',
          "return out[0] if isinstance(out, (tuple, list)) else out",
          "return out[-1] if isinstance(out, (tuple, list)) else out",
          ('tests/test_zoo.py::test_a_head_with_an_auxiliary_output_gives_its_segmentation_logits',)),
    Break('det wrapper: the loss computed with the detector flagged as in eval', 'mmequi/models/robust_model.py',
          "            module.training = not (isinstance(module, nn.MultiheadAttention)",
          "            module.training = module.training and not (isinstance(module, nn.MultiheadAttention)",
          ('tests/test_zoo.py::test_detr_style_losses_get_what_they_need_in_eval_numbers',)),
    Break("det wrapper: mmdet 3.3.0's SSDHead left without the loss_cls its predict reads",
          'mmequi/models/det_robust_model.py', "            head.loss_cls = None", "            pass",
          ('tests/test_zoo.py::test_ssd_predicts_through_the_wrapper',)),
    Break('det wrapper: dropout switched on for the loss', 'mmequi/models/robust_model.py',
          "module.training = not (isinstance(module, nn.MultiheadAttention) or any(kind in type(module).__name__",
          "module.training = not (False or any(kind in type(module).__name__",
          ('tests/test_zoo.py::test_detr_style_losses_get_what_they_need_in_eval_numbers',)),
    Break('det wrapper: a semantic head (HTC) left without the stuff map its loss reads',
          'mmequi/models/det_robust_model.py',
          "sample.gt_sem_seg = PixelData(sem_seg=inputs.new_full((1, *inputs.shape[-2:]), self.no_stuff))", "pass",
          ('tests/test_zoo.py::test_a_detector_with_a_semantic_head_is_attacked_without_stuff_maps',)),
    Break("hook: an instance segmentor's test pipeline without masks let through", 'mmequi/models/det_robust_model.py',
          "if not loads or (segments_instances(self.module) and not getattr(loads[0], 'with_mask', True)):",
          "if not loads:",
          ('tests/test_zoo.py::test_an_instance_segmentor_without_masks_in_its_test_pipeline_is_refused_before_any_image',)),
    Break("det wrapper: TOOD's loss sees no epoch (a test run's hub has none)", 'mmequi/models/det_robust_model.py',
          "    hub.update_info('epoch', 10 ** 6)", "    hub.update_info('epoch', None)", ('tests/test_zoo.py::test_losses_that_read_the_epoch_or_live_in_a_teacher_student_pair_are_attacked',)),
    Break("det wrapper: a teacher-student pair's loss asked of the pair", 'mmequi/models/det_robust_model.py',
          "    if not hasattr(model, 'semi_test_cfg'):\n        return model",
          "    if True:\n        return model", ('tests/test_zoo.py::test_losses_that_read_the_epoch_or_live_in_a_teacher_student_pair_are_attacked',)),
    Break('hook: an attack starts on a test pipeline that loads no annotations', 'mmequi/hooks/robust_test_hook.py',
          "            raise ValueError(missing)  # before the first image", "            pass  # before the first image",
          (T_SEG + '::test_hook_refuses_an_attack_on_a_test_pipeline_without_annotations',)),
    Break("adversarial training: the attack moves the batch norms' running statistics", 'mmequi/models/robust_model.py',
          "for kind in ('Norm', 'Drop')))", "for kind in ('Drop', )))",
          ('tests/test_adversarial_training.py::test_the_attack_steps_no_parameter_and_changes_no_statistics',)),
    Break('adversarial training: the clean images trained on', 'mmequi/training/adversarial.py',
          "out[i] = image[:, :h, :w].to(inputs[i].device)", "out[i] = inputs[i]",
          ('tests/test_adversarial_training.py::test_training_examples_stay_within_eps_in_range_and_raise_the_training_loss',)),
    Break('adversarial training: a padded batch not cropped back before the preprocessor',
          'mmequi/training/adversarial.py',
          "images = list(pixels) if self.sizes is None else [p[:, :h, :w] for p, (h, w) in zip(pixels, self.sizes)]",
          "images = list(pixels)", ('tests/test_adversarial_training.py::test_images_attacked_together_get_what_each_gets_alone',)),
    Break('adversarial training: a batch with no image chosen attacked as an empty group',
          'mmequi/training/adversarial.py', "groups = ([chosen] if chosen else []) if sums_the_objective",
          "groups = [chosen] if sums_the_objective",
          ('tests/test_adversarial_training.py::test_a_ratio_chooses_that_share_of_images_and_validation_passes_through',)),
    Break('adversarial training: the ratio ignored', 'mmequi/training/adversarial.py',
          "generator=torch.Generator().manual_seed(seed)).item() < self.ratio]",
          "generator=torch.Generator().manual_seed(seed)).item() < 1.0]",
          ('tests/test_adversarial_training.py::test_a_ratio_chooses_that_share_of_images_and_validation_passes_through',)),
    Break("adversarial training: the model's own preprocessor not put back after training",
          'mmequi/hooks/adversarial_training_hook.py', "            model.data_preprocessor = maker.preprocessor",
          "            pass", ('tests/test_adversarial_training.py::test_a_short_adversarial_training_run_lowers_the_robust_loss',)),
    Break('adversarial training: the training loss computed with the training flags as they are',
          'mmequi/training/adversarial.py',
          "        with torch.random.fork_rng(devices=[]), loss_mode(self.model):\n            torch.manual_seed(self.seed)\n            data = self.preprocessor(",
          "        with torch.random.fork_rng(devices=[]):\n            torch.manual_seed(self.seed)\n            data = self.preprocessor(",
          ('tests/test_adversarial_training.py::test_the_attack_steps_no_parameter_and_changes_no_statistics',)),
    Break('det wrapper: ground-truth boxes scaled the wrong way', 'mmequi/models/det_robust_model.py',
          "gt.bboxes.rescale_(scale)", "gt.bboxes.rescale_([1 / s for s in scale])", (T_BUG, T_DET)),
    Break('wrapper: defended prediction made on the clean image', 'mmequi/models/robust_model.py',
          "result = self.predict_pixels(pixels, sample)", "result = self.predict_pixels(stages['clean'], sample)",
          (T_BUG, T_SEG)),
    Break('wrapper: the clean image purified instead of the attacked one', 'mmequi/models/robust_model.py',
          "pixels = stages['purified'] = self.defense.purify(pixels,",
          "pixels = stages['purified'] = self.defense.purify(stages['clean'],", (T_BUG, T_SEG)),
    Break('TTA: a mirrored view not mirrored back', 'mmequi/defenses/tta.py',
          "logits = logits.flip(-1) if mirrored else logits", "logits = logits", (T_TTA,)),
    Break('TTA: views averaged as logits, not probabilities', 'mmequi/defenses/tta.py',
          "total = total + logits.softmax(1)", "total = total + logits", (T_TTA,)),
    Break('purified TTA: the purifier skipped', 'mmequi/defenses/tta.py',
          "return self.purifier.purify(images, feature_fn, generator, valid_mask)", "return images", (T_TTA,)),
    Break('purified TTA: the prediction not merged', 'mmequi/defenses/tta.py',
          "return self.tta.merge(infer, inputs)", "return infer(inputs).log_softmax(1)", (T_TTA,)),
    Break("purified TTA: the merge's forwards not counted", 'mmequi/defenses/tta.py',
          "return self.tta.forward_passes", "return 1.0", (T_TTA,)),
    Break("purified TTA: the purifier's objective hidden from attacks and the score", 'mmequi/defenses/tta.py',
          "self.objective = purifier.objective", "self.objective = None", (T_TTA,)),
    Break("detector TTA: the mirror's boxes not flipped back", 'mmequi/models/det_robust_model.py',
          "mirror.set_metainfo(dict(flip=True, flip_direction='horizontal'))",
          "mirror.set_metainfo(dict(flip=False, flip_direction=None))", (T_TTA,)),
    Break('detector TTA: the prediction not merged', 'mmequi/models/det_robust_model.py',
          "return DetTTAModel(module=self.module, tta_cfg=TTA_CFG)._merge_single_sample([plain, mirror])",
          "return plain", (T_TTA,)),
    Break('detector TTA: an instance segmentor accepted (its masks lost by the merge)',
          'mmequi/models/det_robust_model.py',
          "if self.merge is not None and segments_instances(predicting_detector(module)):", "if False:",
          ('tests/test_zoo.py::test_an_instance_segmentor_without_masks_in_its_test_pipeline_is_refused_before_any_image',)),
    Break("detector WBF: the mirror's boxes not flipped back", 'mmequi/models/det_robust_model.py',
          "bbox_flip(pred.bboxes, shape, 'horizontal')", "pred.bboxes", (T_TTA,)),
    Break("detector WBF: the two views' boxes of one object never matched", 'mmequi/models/det_robust_model.py',
          "WBF_IOU = 0.55", "WBF_IOU = 0.95", (T_TTA,)),
    Break("detector WBF: fused by the best score, not the mean", 'mmequi/models/det_robust_model.py',
          "iou_thr=WBF_IOU, conf_type='avg')", "iou_thr=WBF_IOU, conf_type='max')", (T_TTA,)),
    Break('detector WBF: the merge ignored (NMS instead)', 'mmequi/models/det_robust_model.py',
          "if self.merge.box_merge == 'wbf':", "if False:", (T_TTA,)),
    Break("detector WBF: the purified merge's box rule not read", 'mmequi/defenses/tta.py',
          "        return self.tta.box_merge", "        return 'nms'", (T_TTA, 'tests/test_configs.py')),
    Break("detector TTA: the adaptive attack's loss on the image alone", 'mmequi/models/det_robust_model.py',
          "return (self.loss(pixels) + self.loss(pixels.flip(-1), mirrored(self.target, pixels.shape[-1]))) / 2",
          "return self.loss(pixels)", (T_TTA,)),
    Break("detector TTA: the mirror's loss against the unmirrored ground truth", 'mmequi/models/det_robust_model.py',
          "self.loss(pixels.flip(-1), mirrored(self.target, pixels.shape[-1]))",
          "self.loss(pixels.flip(-1), self.target)", (T_TTA,)),
    Break("detector TTA: a tensor ground truth not mirrored", 'mmequi/models/det_robust_model.py',
          "gt.bboxes = bbox_flip(gt.bboxes, (0, width), 'horizontal')", "pass", (T_TTA,)),
    Break('detector TTA: the transferred attack goes through the merge', 'mmequi/models/det_robust_model.py',
          "return DetectionLoss(self.module, sample, seed=self.seed, merge=self.attacked_merge)",
          "return DetectionLoss(self.module, sample, seed=self.seed, merge=self.merge)", (T_TTA,)),
    Break('detector TTA: a rescaled merge accepted', 'mmequi/models/det_robust_model.py',
          "if self.merge is not None and not self.merge.merges_boxes:", "if False:", (T_TTA,)),
    Break('TTA: the adaptive attack does not go through the merge', 'mmequi/models/seg_robust_model.py',
          "return PixelCrossEntropy(self.module, sample, self.attacked_merge)",
          "return PixelCrossEntropy(self.module, sample, None)", (T_TTA,)),
    Break('TTA: the transferred attack goes through the merge (both tasks)', 'mmequi/models/robust_model.py',
          "return self.merge if getattr(self.attack, 'needs_defense', False) else None", "return self.merge",
          (T_TTA,)),
    Break('TTA: no attack goes through the merge (both tasks)', 'mmequi/models/robust_model.py',
          "return self.merge if getattr(self.attack, 'needs_defense', False) else None", "return None",
          (T_TTA,)),
    Break('TTA: the prediction made without the merge', 'mmequi/models/seg_robust_model.py',
          "        if self.merge is None:\n            return super().predict_pixels(",
          "        if True:\n            return super().predict_pixels(", (T_TTA,)),
    Break('config: the hook ignores the config\'s top-level attack and defense', 'mmequi/hooks/robust_test_hook.py',
          "stated_once(kind, self.settings[kind], config.get(kind))", "stated_once(kind, self.settings[kind], None)",
          ('tests/test_configs.py::test_shipped_seg_config_runs[fcn_r18-d8_synthetic-cityscapes_pgd-linf-eps4_'
           'equivariance.py]',)),
    Break('config: two statements of the attack that disagree, one silently kept', 'mmequi/apis/config.py',
          "if top_level is None or in_hook is None or in_hook == top_level:", "if True:",
          ('tests/test_configs.py::test_one_source_rule',)),
    Break('records: image paths not relative to the data root', 'mmequi/evaluation/robust_records.py',
          "img_path=relative_path(sample.get('img_path'), self.data_root)", "img_path=sample.get('img_path')",
          ('tests/test_test_tool.py::test_out_writes_label_pngs_and_per_image_results',)),
    Break('pictures: the codebase painter pointed at the clean image', 'mmequi/hooks/robust_visualization_hook.py',
          "image = list(sample.robust_images.values())[-1]", "image = list(sample.robust_images.values())[0]",
          ('tests/test_test_tool.py::test_show_dir_is_under_the_work_dir_and_the_painter_sees_the_model_input',)),
    Break('views: a padded view\'s features not cropped back to the view', 'mmequi/models/robust_model.py',
          "return crop(out) if isinstance(out, torch.Tensor) else [crop(level) for level in out]",
          "return crop(out) if isinstance(out, torch.Tensor) else list(out)",
          ('tests/test_zoo.py::test_views_are_padded_for_a_neck_that_cannot_take_any_size',)),
    Break('views: a model that cannot take odd sizes gets its views unpadded', 'mmequi/models/robust_model.py',
          "transforms=[dict(type='HFlip')], ...)), and run the model at its own input size\")\n            return divisor",
          "transforms=[dict(type='HFlip')], ...)), and run the model at its own input size\")\n            return None",
          ('tests/test_zoo.py::test_views_are_padded_for_a_neck_that_cannot_take_any_size',)),
    Break('views: a model of one input size gets rescaled views padded to the divisor (and fails at them)',
          'mmequi/models/robust_model.py',
          "if not self.runs_on(image[..., :height + divisor, :width + divisor]):",
          "if False:",
          ('tests/test_zoo.py::test_a_model_of_one_input_size_is_refused_rescaled_views_and_runs_size_keeping_ones',)),
    Break("views: a flip's views taken for rescales (a one-size model refused what it can run)",
          'mmequi/equivariance/transforms.py', "        return type(self).size_factor is EquiTransform.size_factor",
          "        return False",
          ('tests/test_zoo.py::test_a_model_of_one_input_size_is_refused_rescaled_views_and_runs_size_keeping_ones',)),
    # ---- metrics -----------------------------------------------------------------------------------------------------
    Break('metric: ROC-AUC of the equivariance score in the wrong direction', 'mmequi/evaluation/equivariance_metric.py',
          "metrics['auc_clean_vs_attacked'] = roc_auc([r['clean'] for r in results],\n"
          "                                                       [r['attacked'] for r in results])",
          "metrics['auc_clean_vs_attacked'] = roc_auc([r['attacked'] for r in results],\n"
          "                                                       [r['clean'] for r in results])", (T_BUG,)),
    # ---- the report --------------------------------------------------------------------------------------------------
    Break('report: the λ sweep of an adaptive attack left out of the worst case', 'tools/robustness_report.py',
          "if record['sweep'] == 'lambda':", "if False:",
          ('tests/test_tools.py::test_headline_worst_adaptive_includes_the_cells_of_the_lambda_sweep',)),
    Break('report: cells of the old score scale reused without a word', 'tools/robustness_report.py',
          "    if old:  # never mix", "    if False:  # never mix",
          ('tests/test_tools.py::test_report_refuses_cells_of_the_old_score_scale',)),
    Break('report: the cells table rounds to two decimals', 'tools/robustness_report.py',
          "f'{v:.3f}' if isinstance(v, float)", "f'{v:.2f}' if isinstance(v, float)",
          ('tests/test_tools.py::test_committed_reports_regenerate_from_their_cells',)),
    Break('statistics: the convergence interval of the earlier run minus the later', 'mmequi/evaluation/statistics.py',
          "np.asarray(after) - np.asarray(before), [2.5, 97.5]",
          "np.asarray(before) - np.asarray(after), [2.5, 97.5]",
          ('tests/test_tools.py::test_report_convergence_table_judges_each_doubling_against_the_noise_of_the_images',)),
    Break("box mAP: an image drawn twice counted once", 'mmequi/evaluation/box_map.py',
          "drawn = [self.positions[image] for image in images]",
          "drawn = [self.positions[image] for image in dict.fromkeys(images)]", (T_BOX,)),
    Break("box mAP: a draw's matches taken from the wrong area range", 'mmequi/evaluation/box_map.py',
          "base.evalImgs[(k * areas + a) * count + i]", "base.evalImgs[(k * areas) * count + i]", (T_BOX,)),
    Break('box mAP: boxes given to pycocotools as corners, not width and height', 'mmequi/evaluation/box_map.py',
          "bbox=[x1, y1, x2 - x1, y2 - y1]", "bbox=[x1, y1, x2, y2]", (T_BOX,)),
    Break("box mAP: labels taken for COCO category ids", 'mmequi/evaluation/box_map.py',
          "category_id=self.cat_ids[label])", "category_id=label + 1)", (T_BOX,)),
    Break("report: a cell run on other images shown with its own figure", 'tools/robustness_report.py',
          "if key in r.get('metrics', {}) and set(c) == set(images) else", "if key in r.get('metrics', {}) else",
          (T_BOX,)),
    Break("box mAP: the bootstrap's mAP accumulated over small objects only", 'mmequi/evaluation/box_map.py',
          "only.areaRng[:1], only.areaRngLbl[:1], [100]", "only.areaRng[1:2], only.areaRngLbl[1:2], [100]",
          (T_BOX,)),
    Break("report: a detector's steps sweep judged without its boxes", 'tools/robustness_report.py',
          "    if all('bboxes' in m for c in cells", "    if False and all('bboxes' in m for c in cells",
          (T_BOX,)),
    Break("cells: a detector's shards merged from the first shard's boxes only", 'mmequi/evaluation/robust_records.py',
          "metrics.update(boxes.metrics(records, list(records)))",
          "metrics.update(boxes.metrics(records, list(records)[:2]))", (T_BOX,)),
    Break("cells: a detector's own settings (per-class AP, detection limits...) accepted for shards",
          'mmequi/apis/cells.py', "as_list(v) for k, v in COCO_DEFAULTS.items())",
          "as_list(v) for k, v in list(COCO_DEFAULTS.items())[:1])",
          ('tests/test_tools.py::test_robustness_report_refuses_shards_it_cannot_merge',)),
    Break("cells: a detector's merged figures named after the first shard's only", 'mmequi/apis/cells.py',
          "keys = list(dict.fromkeys(k for p in parts for k in p['metrics']))",
          "keys = list(parts[0]['metrics'])", (T_BOX,)),
    Break("report: a detector's draws scored without the report's --cfg-options", 'tools/robustness_report.py',
          "options = cfg_options_dict(getattr(args, 'cfg_options', None))",
          "options = None", (T_BOX,)),
    Break("statistics: the worst case per image takes each image's best accuracy", 'mmequi/evaluation/statistics.py',
          "worst_acc = sum(min(r[i]['aAcc'] for r in runs.values())",
          "worst_acc = sum(max(r[i]['aAcc'] for r in runs.values())",
          ('tests/test_tools.py::test_report_worst_case_per_image_follows_sea_rule',)),
    Break('cells: shards merged out of image order', 'mmequi/apis/cells.py',
          "        for part in parts:\n            with open(osp.join(self.work_dir, part['per_image'])) as f:",
          "        for part in parts[::-1]:\n            with open(osp.join(self.work_dir, part['per_image'])) as f:",
          ('tests/test_tools.py::test_robustness_report_shards_equal_the_cell_run_at_once',)),
    Break("cells: the test run does not name its per-image records", 'mmequi/apis/test.py',
          "per_image=osp.abspath(per_image) if osp.isfile(per_image) else None",
          "per_image=None",
          ('tests/test_tools.py::test_robustness_report_shards_equal_the_cell_run_at_once',)),
    Break('benchmark: the share kept under the adaptive attack read from the transferred attack',
          'tools/benchmark_defense.py', "adaptive_kept_share=share(adaptive['metrics'][key])",
          "adaptive_kept_share=share(on_attacked['metrics'][key])",
          ('tests/test_benchmark.py::test_adaptive_attack_through_each_setting_is_its_worst_case_axis',)),
    Break("report: K and T read from PurifiedTTA's top level, not its purifier", 'tools/robustness_report.py',
          "defense = defense.get('purifier', defense)", "defense = dict(defense)",
          ('tests/test_tools.py::test_report_reads_k_and_t_from_the_purifier',)),
    Break('report: K not counted from the listed views', 'tools/robustness_report.py',
          "defense = dict(defense, num_views=len(defense['transforms']))", "pass",
          ('tests/test_tools.py::test_report_reads_k_and_t_from_the_purifier',)),
    Break('publish_cells: a restore overwrites the work dir\'s own cell', 'tools/misc/publish_cells.py',
          "continue  # the work dir's own record wins", "pass  # the work dir's own record wins",
          ('tests/test_tools.py::test_publish_cells_round_trip_resumes_the_same_cells',)),
    Break('publish_cells: per-image rows dropped on restore', 'tools/misc/publish_cells.py',
          "f.writelines(json.dumps(row) + '\\n' for row in rows)", "f.writelines(json.dumps(row) + '\\n' for row in rows[:1])",
          ('tests/test_tools.py::test_publish_cells_round_trip_resumes_the_same_cells',)),
    Break('publish_cells: a report part restored under the wrong cell name', 'tools/misc/publish_cells.py',
          "yield record['per_image'].split('/')[1], record", "yield record['per_image'].split('/')[2], record",
          ('tests/test_tools.py::test_publish_cells_restores_a_published_report_part',)),
    Break("demo: a cell reads a model's attacks before the cell that makes them has finished", 'tools/demo.py',
          "if cache[i] is None or writer[cache[i]] in (i, *runs)]", "]",
          ('tests/test_tools.py::test_demo_runs_cells_side_by_side_after_the_attacks_they_read',)),
    Break('demo: --workers ignored, every cell in one process', 'tools/demo.py',
          "    if workers <= 1:\n        for i, cmd", "    if True:\n        for i, cmd",
          ('tests/test_tools.py::test_demo_runs_cells_side_by_side_after_the_attacks_they_read',)),
    Break("demo: the runs come back in the order they finished, not the plan's", 'tools/demo.py',
          "yield from (runs[i] for i in range(len(commands)))", "yield from runs.values()",
          ('tests/test_tools.py::test_demo_runs_cells_side_by_side_after_the_attacks_they_read',)),
]


def copy_checkout(target):
    """The checkout's tracked and untracked (not ignored) files, as the tests see them."""
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split('\0')
    for name in filter(None, files):
        source = osp.join(ROOT, name)
        if osp.isfile(source):
            os.makedirs(osp.dirname(osp.join(target, name)) or target, exist_ok=True)
            shutil.copy2(source, osp.join(target, name))


def check_break(item: Break, root: str, timeout: float) -> Tuple[str, float, str]:
    """('caught' | 'SURVIVED' | 'not applied' | 'error', seconds, last output line) for one break in ``root``."""
    path = osp.join(root, item.path)
    with open(path) as f:
        original = f.read()
    if original.count(item.old) != 1:
        return 'not applied', 0.0, f'the text occurs {original.count(item.old)} times in {item.path}'
    tests = [t for t in item.tests if osp.exists(osp.join(root, t.split('::')[0]))]
    if not tests:
        return 'error', 0.0, f'none of its tests exists: {", ".join(item.tests)}'
    start = time.perf_counter()
    try:
        with open(path, 'w') as f:
            f.write(original.replace(item.old, item.new))
        try:
            # The copy first on every process's path: tests that start the test command in a fresh process must
            # run the broken copy, not the installed (editable) checkout.
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get('PYTHONPATH')])))
            run = subprocess.run([sys.executable, '-m', 'pytest', '-x', '-q', '-p', 'no:cacheprovider',
                                  *tests], cwd=root, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return 'error', time.perf_counter() - start, f'timed out after {timeout:.0f} s'
    finally:
        with open(path, 'w') as f:
            f.write(original)
    summaries = [line for line in run.stdout.splitlines() if re.search(r'\d+ (passed|failed|error)', line)]
    last = summaries[-1] if summaries else (run.stdout + run.stderr).strip()[-300:]
    status = {0: 'SURVIVED', 1: 'caught'}.get(run.returncode, 'error')
    return status, time.perf_counter() - start, last


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-k', default='', help='only the breaks whose name matches this regular expression')
    parser.add_argument('--list', action='store_true', help='list the breaks and exit')
    parser.add_argument('--timeout', type=float, default=600, help='seconds per break')
    args = parser.parse_args(argv)
    chosen = [b for b in BREAKS if re.search(args.k, b.name, re.IGNORECASE)]
    if args.list:
        for i, item in enumerate(chosen, 1):
            print(f'{i:3d}. {item.name}  ({item.path}; {", ".join(item.tests)})')
        return 0
    if not chosen:
        parser.error(f'no break matches -k {args.k!r}')
    failed = 0
    with tempfile.TemporaryDirectory(prefix='break_check_') as root:
        copy_checkout(root)
        for i, item in enumerate(chosen, 1):
            status, seconds, last = check_break(item, root, args.timeout)
            failed += status != 'caught'
            print(f'{i:3d}/{len(chosen)} {status:11s} {seconds:6.1f} s  {item.name}'
                  + ('' if status == 'caught' else f'\n      {last}'), flush=True)
    print(f'{len(chosen) - failed} of {len(chosen)} breaks caught' + (f', {failed} not' if failed else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
