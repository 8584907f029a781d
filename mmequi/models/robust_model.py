"""The task-agnostic test-time wrapper: [attack] → [purify] → predict, in pixel space, one image at a time.

Shaped like mmengine's ``BaseTTAModel`` (model/wrappers/test_time_aug.py): it holds the segmentor/detector as
``self.module`` and only overrides ``test_step``. Task subclasses (``SegRobustModel``, ``DetRobustModel``) say
what the attack maximises and which feature map the equivariance is measured on.

Pixel space (docs/method.md, "Pixel space in OpenMMLab"): the dataloader's CHW BGR uint8 images become float [0, 255] tensors; attack and purifier
perturb those, and the model's own data preprocessor normalises (and pads) inside every forward, so ε is in the
pixel units users think in and the padding is never perturbed.
"""
import contextlib
import copy
import hashlib
import math
import os
import os.path as osp
import time
import zlib
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from mmequi.attacks import Attack, AttackContext
from mmequi.defenses import Defense
from mmequi.equivariance import EquivarianceScorer
from mmequi.evaluation.robust_records import relative_path
from mmequi.registry import ATTACKS, DEFENSES, build


def build_component(registry, cfg, base, what):
    """An attack/defense from its config dict (or an instance, or None), built by ``registry``."""
    if cfg is None or isinstance(cfg, base):
        return cfg
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f'{what} must be None, an instance or a dict with a "type" key, got {cfg!r}')
    return build(registry, cfg, what)


class PassCounter:
    """A feature function that counts what goes through the network, in units of the input image's area:
    ``passes['forward']`` without a graph, ``passes['forward_backward']`` with one (the defense's cost measure)."""

    def __init__(self, feature_fn, pixels):
        self.feature_fn, self.area = feature_fn, pixels.shape[-2] * pixels.shape[-1]
        self.passes = {'forward': 0.0, 'forward_backward': 0.0}

    def __call__(self, pixels):
        kind = 'forward_backward' if torch.is_grad_enabled() else 'forward'
        self.passes[kind] += pixels.shape[0] * pixels.shape[-2] * pixels.shape[-1] / self.area
        return self.feature_fn(pixels)


def keyed_seed(base: int, key) -> int:
    """A seed from ``base`` and an image's key (its path, id or index): stable across runs and processes."""
    return (base + zlib.crc32(str(key).encode())) % (2 ** 63)


@contextlib.contextmanager
def flags_restored(module: nn.Module):
    """Every submodule's training flag as it was before the block, whatever the block sets (by ``train()``/``eval()``
    or by hand); yields ``{submodule: flag}``."""
    flags = {m: m.training for m in module.modules()}
    try:
        yield flags
    finally:
        for m, flag in flags.items():
            m.training = flag


@contextlib.contextmanager
def loss_mode(model: nn.Module):
    """A model's modules flagged as training while its loss is computed, except the layers whose numbers change
    with the flag, flagged as in eval (normalisation: running statistics, left as they are; dropout, drop-path and
    ``nn.MultiheadAttention``'s attention dropout: off), whatever the model's mode. The detection attacks' loss and
    adversarial training's attack compute in it: DETR-style detectors build what their loss needs (encoder outputs,
    DINO's denoising queries) only when ``self.training``, and the model computes as in eval mode. The flags are set
    on each module (not through ``train()``, whose overrides unfreeze things) and restored after."""
    with flags_restored(model) as flags:
        for module in flags:
            module.training = not (isinstance(module, nn.MultiheadAttention) or any(kind in type(module).__name__
                                                                                   for kind in ('Norm', 'Drop')))
        yield


def preprocess(model: nn.Module, pixels: torch.Tensor, sample) -> Tuple[torch.Tensor, list]:
    """``model``'s own data preprocessor on 1×C×H×W float pixels (differentiable) -> (inputs, [sample])."""
    data = model.data_preprocessor(dict(inputs=list(pixels), data_samples=[sample]), False)
    return data['inputs'], data['data_samples']


class RobustModel(BaseModel):
    """Evaluate ``module`` on clean, attacked and/or purified inputs.

    Args:
        module: the segmentor/detector (an ``nn.Module``; weights already loaded).
        attack: config of an ``ATTACKS`` entry (e.g. ``dict(type='PGD', eps=4, step_size=1, steps=50)``) or None.
        defense: config of a ``DEFENSES`` entry (e.g. ``dict(type='EquivariancePurifier')``) or None.
        feature: the feature map the equivariance is measured on (see the task subclass), None = its default.
        seed: runs are reproducible: every image draws its randomness from ``seed`` and its path, so batch > 1
            gives the same per-image result as batch 1.
        score: also measure the equivariance score of the clean, attacked and purified inputs (``K + 1`` extra
            forwards each), stored per image as ``equivariance_scores`` for :class:`EquivarianceMetric`.
        keep_images: store the (uint8) clean/attacked/purified images per sample for visualisation.
        feature_window: ``dict(crop_size=(h, w), stride=(h, w))``: the features of an input larger than the crop (the
            ×2 views of a large image) are computed window by window and stitched at feature resolution, as mmseg's
            ``test_cfg=dict(mode='slide')`` does for predictions, so no view goes through the network whole. None:
            the segmentor's own ``test_cfg`` when it slides, else whole inputs.
        attack_cache: a directory where attacked images are stored and reused (keyed by the attack's settings, the
            seed and the image), so a second run on the same attacked images (e.g. with a defense) does not attack
            them again.
        data_root: the dataset's root: an image's random draws depend on its path relative to it, so they do not
            change with how the root is spelled (relative, absolute, trailing slash) or where the data lives.
            None: the path as the dataset gives it (``RobustTestHook`` passes the test dataset's root).

    Shapes: ``test_step`` takes the dataloader's batch (C×H×W uint8 BGR images and their data samples) and returns
    the model's data samples, with ``robust_seconds``, ``equivariance_scores`` and (``keep_images``)
    ``robust_images`` added. Attack and defense work on 1×C×H×W float pixels in [0, 255].

    Example::

        >>> wrapper = SegRobustModel(segmentor, attack=dict(type='PGD', eps=4, steps=50),
        ...                          defense=dict(type='EquivariancePurifier'))
        >>> results = wrapper.test_step(data_batch)
    """
    default_feature = None
    feature_choices = ()
    merges_predictions = False  # whether the task can predict through a defense's merge over views (TTA)

    def __init__(self, module: nn.Module, attack: Union[dict, Attack, None] = None,
                 defense: Union[dict, Defense, None] = None, feature: Optional[str] = None, seed: int = 0,
                 score: bool = True, keep_images: bool = False, attack_cache: Optional[str] = None,
                 feature_window: Optional[dict] = None, data_root: Optional[str] = None):
        super().__init__()
        if not isinstance(module, nn.Module):
            raise ValueError(f'module must be a built model (nn.Module), got {type(module).__name__}')
        self.module = module
        self.attack = build_component(ATTACKS, attack, Attack, 'attack')
        self.defense = build_component(DEFENSES, defense, Defense, 'defense')
        # the defense whose merge over views the prediction goes through (TTA), or None
        self.merge = self.defense if getattr(self.defense, 'merges_predictions', False) else None
        if self.merge is not None and not self.merges_predictions:
            raise ValueError(f'{self.defense!r} merges the predictions of several views, which {type(self).__name__} '
                             'cannot do differentiably')
        if getattr(self.attack, 'needs_defense', False) and self.defense is None:
            raise ValueError(f'{type(self.attack).__name__} is an adaptive attack: it attacks the defended model and '
                             'needs a defense (set defense=... in RobustTestHook / --defense NAME)')
        self.feature = self.check_feature(self.default_feature if feature is None else feature)
        # A defense with a feature of its own (the rotation baseline's head was trained on one) purifies on that.
        self.defense_feature = self.check_feature(getattr(self.defense, 'feature', None) or self.feature)
        self.seed = int(seed)
        self.score = bool(score)
        self.keep_images = bool(keep_images)
        self.attack_cache = attack_cache
        self.data_root = data_root
        self.feature_window = self.check_window(feature_window if feature_window is not None else self.own_window())
        # The score always uses equivariance (never pooled) views: the defense's views when it has them.
        transforms = getattr(getattr(self.defense, 'objective', None), 'transforms', None)
        self.scorer = EquivarianceScorer(transforms) if self.score else None
        self._view_divisor = 'unprobed'  # probe_view_sizes, at the first view

    # ---- what a task subclass provides -------------------------------------------------------------------------
    def check_feature(self, feature):
        """Validate the ``feature`` name against the task's choices and what this model can give (once, when the
        wrapper is built: a model that cannot give it is refused before any work)."""
        name = feature.split('.')[0] if isinstance(feature, str) else None
        if name not in self.feature_choices:
            raise ValueError(f'unknown feature {feature!r} for {type(self).__name__}; expected one of '
                             f'{self.feature_choices} (optionally with .<index>, e.g. "backbone.3")')
        reason = self.missing_feature(name)
        if reason is not None:
            supported = [c for c in self.feature_choices if self.missing_feature(c) is None]
            raise ValueError(f'feature {feature!r} is not available on this {type(self.module).__name__}: {reason}; '
                             f'features it supports: {supported} (choose one with feature=... in RobustTestHook, '
                             '--feature in tools/test.py)')
        return feature

    def missing_feature(self, name: str) -> Optional[str]:
        """Why this model cannot give the feature ``name`` (one of ``feature_choices``), or None if it can."""
        return None

    def task_objective(self, sample):
        """Callable images -> Tensor[B] that the attack maximises (the task loss against the annotations); an
        adaptive attack on a defense that merges predictions (TTA) maximises it on the merged prediction."""
        raise NotImplementedError

    # ---- pixel space -------------------------------------------------------------------------------------------
    def to_pixels(self, image: torch.Tensor) -> torch.Tensor:
        """Dataloader image (C×H×W uint8) -> 1×C×H×W float [0, 255] on the model's device."""
        device = next(self.module.parameters()).device
        return image.to(device).float().unsqueeze(0)

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """What the data preprocessor does to B×C×H×W pixels (BGR→RGB, mean/std), differentiable, with its padding
        cropped off: the features of every transformed view keep the exact geometry the transform's inverse
        expects."""
        samples = [BaseDataElement() for _ in range(len(pixels))]  # take the padding info the preprocessor writes
        inputs = self.module.data_preprocessor(dict(inputs=list(pixels), data_samples=samples), False)['inputs']
        return inputs[..., :pixels.shape[-2], :pixels.shape[-1]]

    def predict_pixels(self, pixels: torch.Tensor, sample: BaseDataElement) -> BaseDataElement:
        """The unchanged model's prediction on 1×C×H×W float pixels (a new data sample holding ``sample``'s data;
        a deep copy, since preprocessors convert annotations in place)."""
        with torch.no_grad():
            inputs, samples = preprocess(self.module, pixels, copy.deepcopy(sample))
            return self.module.predict(inputs, samples)[0]

    @property
    def attacked_merge(self):
        """The merge over views that the attack's task loss goes through: the defense's, for an adaptive attack (it
        attacks the defended model); None for a transferred one (it sees the plain model) or without a merge."""
        return self.merge if getattr(self.attack, 'needs_defense', False) else None

    def attack_context(self) -> AttackContext:
        """What an adaptive attack may know: the defense and the feature function it optimises."""
        return AttackContext(self.defense, self.defense_feature_fn)

    # ---- the test step -----------------------------------------------------------------------------------------
    def image_seed(self, sample, index):
        """Stable per-image seed: the config's seed and the image path relative to ``data_root`` (its id, else its
        index in the batch, if it has no path)."""
        key = self.relative_path(sample)
        if key is None:
            key = sample.metainfo.get('img_id', index)
        return keyed_seed(self.seed * 1_000_003, key)

    def relative_path(self, sample):
        """The image's path relative to ``data_root`` (as the dataset gives it without one; None without a path)."""
        return relative_path(sample.metainfo.get('img_path'), self.data_root)

    def generator(self, seed, purpose):
        return torch.Generator().manual_seed(seed + purpose)

    def test_step(self, data):
        inputs, samples = data['inputs'], data['data_samples']
        return [self.test_one(image, sample, self.image_seed(sample, i))
                for i, (image, sample) in enumerate(zip(inputs, samples))]

    def test_one(self, image, sample, seed):
        stages = {'clean': self.to_pixels(image)}
        pixels, seconds, passes = stages['clean'], {}, {}
        if self.attack is not None:
            pixels = stages['attacked'] = self.attacked(pixels, sample, seed, seconds)
        if self.defense is not None:
            start = time.perf_counter()
            counter = PassCounter(self.defense_feature_fn, pixels)
            pixels = stages['purified'] = self.defense.purify(pixels, counter, self.generator(seed, 2))
            seconds['defense'] = time.perf_counter() - start
            passes = counter.passes
            if self.merge is not None:  # its prediction costs the views' forwards
                passes['forward'] += self.merge.forward_passes - 1  # beyond the one any prediction costs
        result = self.predict_pixels(pixels, sample)
        result.set_field(seconds, 'robust_seconds')
        result.set_field(passes, 'robust_passes')
        if self.score:
            # The same views (same generator seed) for every stage, so the scores are comparable.
            result.set_field({name: float(self.scorer(x, self.feature_fn, self.generator(seed, 3)))
                              for name, x in stages.items()}, 'equivariance_scores')
        if self.keep_images:
            result.set_field({name: x[0].detach().round().clamp(0, 255).byte().cpu()
                              for name, x in stages.items()}, 'robust_images')
        return result

    def attacked(self, pixels, sample, seed, seconds):
        """The attacked pixels of one image: from ``attack_cache`` when an earlier run with the same attack, seed and
        image stored them there, else computed (and stored); ``seconds['attack']`` is set when computed."""
        path = None
        if self.attack_cache is not None:
            key = f'{self.attack!r}|{self.seed}|{seed}|{tuple(pixels.shape)}'
            if self.attack.needs_defense:  # an adaptive attack's images depend on the defense it attacked
                key += f'|{self.defense!r}'
            path = osp.join(self.attack_cache, hashlib.sha1(key.encode()).hexdigest() + '.pt')
            if osp.isfile(path):
                return torch.load(path, map_location=pixels.device, weights_only=True)
        start = time.perf_counter()
        adv = self.attack.perturb(pixels, self.task_objective(sample), self.generator(seed, 1),
                                  context=self.attack_context())
        seconds['attack'] = time.perf_counter() - start
        if path is not None:
            os.makedirs(self.attack_cache, exist_ok=True)
            torch.save(adv.cpu(), path + '.tmp')
            os.replace(path + '.tmp', path)  # a run killed mid-write leaves no half file behind
        return adv

    def feature_fn(self, pixels):
        """Feature map(s) of ``pixels`` on which the equivariance is measured (``self.feature``)."""
        return self.view_features(pixels, self.feature)

    def defense_feature_fn(self, pixels):
        """The feature map(s) the defense optimises (``self.defense_feature``)."""
        return self.view_features(pixels, self.defense_feature)

    def view_features(self, pixels, feature):
        """The features of a view of any size (a rescale has sizes the model's inputs never have). A model that
        takes any size (``view_divisor`` None) gets the view as it is. Otherwise (necks that concatenate levels need
        sizes every stride divides) the view is padded as the data preprocessor pads the model's own inputs (zeros
        after normalisation, bottom and right, to ``view_divisor``) and every feature map cropped back to the view's
        share of it, so the transforms' inverses see the view's geometry (docs/method.md, "Views the model can
        take")."""
        inputs = self.normalise(pixels)
        if self.view_divisor is None:
            return self.windowed_features(inputs, feature)
        height, width = inputs.shape[-2:]
        padded = F.pad(inputs, (0, -width % self.view_divisor, 0, -height % self.view_divisor))
        out = self.windowed_features(padded, feature)

        def crop(level):
            return level[..., :math.ceil(height * level.shape[-2] / padded.shape[-2]),
                         :math.ceil(width * level.shape[-1] / padded.shape[-1])]
        return crop(out) if isinstance(out, torch.Tensor) else [crop(level) for level in out]

    def size_divisor(self):
        """The size divisor the data preprocessor pads the model's inputs to (mmdet ``pad_size_divisor``, mmseg
        ``size_divisor`` or its ``test_cfg``'s), or 32 (the largest stride of the zoo's backbones) when it states
        none above 1."""
        pre = self.module.data_preprocessor
        stated = [getattr(pre, 'pad_size_divisor', None), getattr(pre, 'size_divisor', None),
                  (getattr(pre, 'test_cfg', None) or {}).get('size_divisor')]
        return next((int(d) for d in stated if d and int(d) > 1), 32)

    @property
    def view_divisor(self):
        """None when the model takes views of any size, else the divisor they are padded to (probed once)."""
        if self._view_divisor == 'unprobed':
            self._view_divisor = self.probe_view_sizes()
        return self._view_divisor

    def probe_view_sizes(self):
        """None when the model computes each feature it is asked for (``feature`` and the defense's) on an input of
        an odd size near :meth:`probe_size`: every model whose views worked before, whose score is therefore
        unchanged. Else ``size_divisor()``: views are then padded to it. A model that fails at a size the divisor
        divides too takes one input size only: its views must keep the image's size (None: they pass as they are),
        else it is refused, naming the views that work. Probed once (at the first view, or when ``RobustTestHook``
        wraps the model, before any image), in eval mode, without a graph."""
        divisor = self.size_divisor()
        height, width = self.probe_size(divisor)
        image = self.to_pixels(torch.zeros(3, height + divisor + 1, width + divisor + 1))
        if not self.runs_on(image):  # an odd size
            if not self.runs_on(image[..., :height + divisor, :width + divisor]):  # a size the divisor divides
                # A backbone built for one input size (BEiT's relative position tables): no view of another size
                # runs, padded or not; views that keep the image's size do.
                if all(t.keeps_size for t in self.view_transforms()):
                    return None
                raise ValueError(
                    f'{type(self.module).__name__} takes inputs of one size only (it fails on '
                    f'{height + divisor}×{width + divisor} as on {height + divisor + 1}×{width + divisor + 1}): the '
                    "equivariance views must keep the image's size. Use a defense whose views do, e.g. the flip "
                    "preset (--defense equivariance_flip, or defense=dict(type='EquivariancePurifier', "
                    "transforms=[dict(type='HFlip')], ...)), and run the model at its own input size")
            return divisor
        return None

    def probe_size(self, divisor):
        """(h, w) near what the model is made for: the size its data preprocessor pads to (mmseg ``size``), else
        its sliding window's crop, else 2 × 3 divisors (a head with a fixed pooling window needs a minimum size)."""
        size = getattr(self.module.data_preprocessor, 'size', None) or (self.own_window() or {}).get('crop_size')
        return tuple(size) if size else (2 * divisor, 3 * divisor)

    def view_transforms(self):
        """The transforms of every view the model is asked for: the defense's and the score's."""
        found = list(getattr(getattr(self.defense, 'objective', None), 'transforms', None) or [])
        if self.scorer is not None:
            found += self.scorer.objective.transforms
        return found

    def runs_on(self, pixels):
        """Whether the model computes each feature it is asked for (``feature`` and the defense's) on ``pixels``: in
        eval mode (each module's flag restored after), without a graph."""
        with flags_restored(self.module), torch.no_grad():
            self.module.eval()
            try:
                for feature in dict.fromkeys((self.feature, self.defense_feature)):
                    self.windowed_features(self.normalise(pixels), feature)
                return True
            except (RuntimeError, AssertionError):  # sizes that do not match inside the network, or a size assert
                return False

    def own_window(self):
        """The model's own sliding window (mmseg ``test_cfg=dict(mode='slide', crop_size, stride)``), or None."""
        test_cfg = getattr(self.module, 'test_cfg', None) or {}
        if test_cfg.get('mode') == 'slide':
            return dict(crop_size=test_cfg['crop_size'], stride=test_cfg['stride'])
        return None

    @staticmethod
    def check_window(window):
        if window is None:
            return None
        sizes = [tuple(window.get(k, ())) for k in ('crop_size', 'stride')] if isinstance(window, dict) else []
        if (len(sizes) != 2 or set(window) != {'crop_size', 'stride'}
                or not all(len(v) == 2 and all(isinstance(n, int) and n >= 8 for n in v) for v in sizes)
                or any(s > c for s, c in zip(sizes[1], sizes[0]))):
            raise ValueError('feature_window must be None or dict(crop_size=(h, w), stride=(h, w)) with integers >= 8 '
                             f'and stride <= crop_size, got {window!r}')
        return dict(crop_size=sizes[0], stride=sizes[1])

    def windowed_features(self, inputs, feature):
        """:meth:`features`, window by window for inputs larger than ``feature_window``'s crop: each window's
        feature maps are placed at their position in the whole map (scaled by the feature stride) and overlaps
        averaged."""
        window = self.feature_window
        if window is None or all(n <= c for n, c in zip(inputs.shape[-2:], window['crop_size'])):
            return self.features(inputs, feature)
        (crop_h, crop_w), (stride_h, stride_w) = window['crop_size'], window['stride']
        height, width = inputs.shape[-2:]
        crop_h, crop_w = min(crop_h, height), min(crop_w, width)
        sums, counts, single = None, None, False
        for y in range(0, max(height - crop_h + stride_h - 1, 0) // stride_h + 1):
            for x in range(0, max(width - crop_w + stride_w - 1, 0) // stride_w + 1):
                top, left = min(y * stride_h, height - crop_h), min(x * stride_w, width - crop_w)  # mmseg's grid
                out = self.features(inputs[..., top:top + crop_h, left:left + crop_w], feature)
                single = isinstance(out, torch.Tensor)
                levels = [out] if single else list(out)
                if sums is None:
                    scales = [(f.shape[-2] / crop_h, f.shape[-1] / crop_w) for f in levels]
                    sums = [f.new_zeros(*f.shape[:2], round(height * sy), round(width * sx))
                            for f, (sy, sx) in zip(levels, scales)]
                    counts = [f.new_zeros(1, 1, *s.shape[-2:]) for f, s in zip(levels, sums)]
                for level, (f, (sy, sx)) in enumerate(zip(levels, scales)):
                    fy, fx = round(top * sy), round(left * sx)
                    h, w = min(f.shape[-2], sums[level].shape[-2] - fy), min(f.shape[-1], sums[level].shape[-1] - fx)
                    sums[level][..., fy:fy + h, fx:fx + w] += f[..., :h, :w]
                    counts[level][..., fy:fy + h, fx:fx + w] += 1
        stitched = [s / c.clamp_min(1) for s, c in zip(sums, counts)]
        return stitched[0] if single else stitched

    def features(self, inputs, feature):
        raise NotImplementedError

    @staticmethod
    def select(levels, feature):
        """'name' -> all levels (a list), 'name.i' -> level i only, 'name.i,j' -> levels i and j (a list)."""
        levels = list(levels) if isinstance(levels, (list, tuple)) else [levels]
        if '.' not in feature:
            return levels
        try:
            indices = [int(i) for i in feature.split('.', 1)[1].split(',')]
        except ValueError:
            raise ValueError(f'feature {feature!r}: expected name.<index>[,<index>...]') from None
        for index in indices:
            if not -len(levels) <= index < len(levels):
                raise ValueError(f'feature {feature!r}: the model has {len(levels)} levels there')
        return levels[indices[0]] if len(indices) == 1 else [levels[i] for i in indices]

    # A wrapper is for testing only.
    def forward(self, inputs, data_samples=None, mode='tensor'):
        raise NotImplementedError(f'{type(self).__name__} only supports test_step (it wraps a trained model)')

    def train_step(self, data, optim_wrapper):
        raise NotImplementedError(f'{type(self).__name__} is a test-time wrapper; train the inner model instead')
