"""The equivariance score of docs/method.md, Eq. 2: how well the views ``f_i = g_i⁻¹(F(g_i(x)))`` agree.

Higher is more equivariant. ``reduction='sum'`` (Eq. 2, the defenses' objective) lies in [−P·L, P·L] for P view
pairs and L feature levels; ``reduction='mean'`` (the mean cosine, what reports give) in [−1, 1] whatever K and L, so
scores compare across settings and models. The purifier minimises the negative sum (Algorithm 1); its normalised
steps make the scale irrelevant there.
"""
import torch
import torch.nn.functional as F

from .transforms import build_transforms, full_mask, resize


def _as_levels(features, what):
    """A feature map or a list/tuple of them (FPN levels) -> list of B×C×h×w tensors."""
    levels = [features] if isinstance(features, torch.Tensor) else features
    if not isinstance(levels, (list, tuple)) or not levels or not all(
            isinstance(f, torch.Tensor) and f.dim() == 4 for f in levels):
        raise ValueError(f'{what} must be a B×C×h×w tensor or a non-empty list/tuple of them, got {features!r:.200}')
    return list(levels)


def _pair_cosine(a, b, mask):
    """Cosine between the masked, flattened feature maps of two views, per image (Eq. 2's summand)."""
    a = F.normalize((a * mask).flatten(1), dim=1)
    b = F.normalize((b * mask).flatten(1), dim=1)
    return (a * b).sum(1)


def equivariance_score(views, masks=None, reduction='sum'):
    """Sum (or, ``reduction='mean'``, mean) over all view pairs (i < j) and feature levels of the cosine similarity of
    the masked views -> Tensor[B].

    ``views``: list over views of B×C×h×w maps aligned to the identity view (or of lists over levels, each level at
    its own size). ``masks``: the same structure with B×1×h×w {0,1} validity masks, or None (all valid); a pair is
    compared where both its views are valid.
    """
    if reduction not in ('sum', 'mean'):
        raise ValueError(f"equivariance_score: reduction must be 'sum' or 'mean', got {reduction!r}")
    if not isinstance(views, (list, tuple)) or len(views) < 2:
        raise ValueError(f'equivariance_score needs a list of at least 2 views, got {type(views).__name__} '
                         f'of length {len(views) if isinstance(views, (list, tuple)) else "-"}')
    views = [_as_levels(v, f'view {i}') for i, v in enumerate(views)]
    if masks is None:
        masks = [[full_mask(f, f.shape[-2:]) for f in levels] for levels in views]
    if not isinstance(masks, (list, tuple)) or len(masks) != len(views):
        raise ValueError(f'masks must be None or a list with one entry per view ({len(views)})')
    masks = [_as_levels(m, f'mask of view {i}') for i, m in enumerate(masks)]
    reference = views[0]
    for i, (levels, level_masks) in enumerate(zip(views, masks)):
        if len(levels) != len(reference) or len(level_masks) != len(reference):
            raise ValueError(f'view {i} has {len(levels)} feature levels and {len(level_masks)} masks, '
                             f'view 0 has {len(reference)} levels')
        for level, (f, m, f0) in enumerate(zip(levels, level_masks, reference)):
            if f.shape != f0.shape:
                raise ValueError(f'feature shape mismatch at level {level}: view 0 is {tuple(f0.shape)}, view {i} is '
                                 f'{tuple(f.shape)} (views must be aligned to the identity view)')
            if m.shape != (f.shape[0], 1, *f.shape[-2:]):
                raise ValueError(f'mask of view {i}, level {level} has shape {tuple(m.shape)}, expected '
                                 f'{(f.shape[0], 1, *f.shape[-2:])}')
    score = reference[0].new_zeros(reference[0].shape[0])
    for i in range(len(views)):
        for j in range(i + 1, len(views)):
            for a, b, ma, mb in zip(views[i], views[j], masks[i], masks[j]):
                score = score + _pair_cosine(a, b, ma * mb)
    if reduction == 'mean':
        score = score / (len(views) * (len(views) - 1) // 2 * len(reference))
    return score


def aligned(transform, params, levels, sizes):
    """One image's (or the batch's) view made comparable: a transformed view's feature levels brought back by the
    transform's inverse to the identity view's ``sizes``, with masks of where they are valid; the identity view
    (``transform`` None) as it is, valid everywhere -> list over levels of (features, mask). The views' ``align`` of
    Eq. 2; a baseline compares its own way (the invariance objective pools)."""
    if transform is None:
        return [(f, full_mask(f, size)) for f, size in zip(levels, sizes)]
    return [transform.invert(f, params, size) for f, size in zip(levels, sizes)]


def cap_size(view, max_view_area, image_area):
    """Downscale a transformed view (aspect kept) so that its area is at most ``max_view_area`` × the image's; the
    inverse resizes the features to the identity view's size anyway, so the view stays aligned (an approximation:
    the model sees fewer pixels)."""
    height, width = view.shape[-2:]
    if max_view_area is None or height * width <= max_view_area * image_area:
        return view
    factor = (max_view_area * image_area / (height * width)) ** 0.5
    return resize(view, (max(1, int(height * factor)), max(1, int(width * factor))))


def identity_view(feature_fn, images, align=aligned):
    """The identity view -> (list over levels of (features, mask), feature sizes)."""
    levels = _as_levels(feature_fn(images), 'feature_fn output')
    sizes = [tuple(f.shape[-2:]) for f in levels]
    return align(None, None, levels, sizes), sizes


def transformed_view(feature_fn, images, transform, params, sizes, align=aligned, max_view_area=None):
    """View ``g⁻¹(F(g(x)))`` of one transform, with one parameter set per image -> list over levels of
    (features, mask). Each image goes through ``feature_fn`` on its own (its own parameters, its own size)."""
    area = images.shape[-2] * images.shape[-1]
    outputs = [_as_levels(feature_fn(cap_size(transform.apply(image, p), max_view_area, area)), 'feature_fn output')
               for image, p in zip(images.split(1), params)]
    return _assemble(transform, params, outputs, sizes, align)


def _assemble(transform, params, outputs, sizes, align):
    """Per-image feature levels of one transformed view -> the batch's view, each image's ``align``-ed."""
    per_image = []
    for levels, image_params in zip(outputs, params):
        if len(levels) != len(sizes):
            raise ValueError(f'feature_fn returned {len(levels)} levels for {transform!r}, {len(sizes)} for the '
                             'identity view')
        per_image.append(align(transform, image_params, levels, sizes))
    return [tuple(torch.cat(parts) for parts in zip(*level)) for level in zip(*per_image)]


def batched_views(feature_fn, images, transforms, params, align=aligned, max_view_area=None):
    """(every view, identity first; the identity's feature sizes), with one ``feature_fn`` call per input size: the identity, flips, rotations and
    colour jitters of an image (all of its own size) go through the network together. The same values as one call
    per view, up to float summation order."""
    area = images.shape[-2] * images.shape[-1]
    inputs = {('identity', b): image for b, image in enumerate(images.split(1))}
    for i, (transform, transform_params) in enumerate(zip(transforms, params)):
        for b, (image, p) in enumerate(zip(images.split(1), transform_params)):
            inputs[i, b] = cap_size(transform.apply(image, p), max_view_area, area)
    groups, outputs = {}, {}
    for key, x in inputs.items():
        groups.setdefault(tuple(x.shape), []).append(key)
    for keys in groups.values():
        levels = _as_levels(feature_fn(torch.cat([inputs[k] for k in keys])), 'feature_fn output')
        outputs.update({key: [f[n:n + 1] for f in levels] for n, key in enumerate(keys)})
    batch = images.shape[0]
    identity = [torch.cat(parts) for parts in zip(*[outputs['identity', b] for b in range(batch)])]
    sizes = [tuple(f.shape[-2:]) for f in identity]
    views = [align(None, None, identity, sizes)]
    return views + [_assemble(t, p, [outputs[i, b] for b in range(batch)], sizes, align)
                    for i, (t, p) in enumerate(zip(transforms, params))], sizes


def sample_params(transforms, batch, generator=None):
    """One parameter set per transform and image, drawn transform by transform, image by image."""
    return [[t.sample(generator) for _ in range(batch)] for t in transforms]


def _check_images(images):
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f'images must be a B×C×H×W tensor, got {getattr(images, "shape", type(images))}')


def _split(views):
    return [[f for f, _ in view] for view in views], [[m for _, m in view] for view in views]


def view_features(feature_fn, images, transforms, generator=None, align=aligned, max_view_area=None,
                  batch_views=False):
    """Views of Eq. 2 -> (views, masks), each a list over views (identity first) of lists over feature levels.

    ``feature_fn(images)`` returns a B×C×h×w tensor or a list/tuple of them (levels). Every transform draws its own
    parameters for every image, so the transformed images go through ``feature_fn`` one at a time. ``align`` makes
    each view comparable (:func:`aligned`, Eq. 2; the invariance baseline passes its pooling). ``max_view_area`` caps a transformed view's area (× the image's).
    ``batch_views`` sends the views of equal size through ``feature_fn`` together (:func:`batched_views`).
    """
    _check_images(images)
    transforms = build_transforms(transforms)
    params = sample_params(transforms, images.shape[0], generator)
    return _split(all_views(feature_fn, images, transforms, params, align, max_view_area, batch_views)[0])


def all_views(feature_fn, images, transforms, params, align=aligned, max_view_area=None, batch_views=False):
    """(every view, identity first; the identity's feature sizes): batched by input size or one call per view."""
    if batch_views:
        return batched_views(feature_fn, images, transforms, params, align, max_view_area)
    identity, sizes = identity_view(feature_fn, images, align)
    return [identity] + [transformed_view(feature_fn, images, t, p, sizes, align, max_view_area)
                         for t, p in zip(transforms, params)], sizes


def compute_equivariance_score(feature_fn, images, transforms, generator=None, align=aligned, max_view_area=None,
                               batch_views=False, reduction='sum'):
    """Equivariance score (Eq. 2) of ``images`` under the identity view plus ``transforms`` -> Tensor[B]. Another
    ``align`` gives a baseline's score instead; ``reduction`` as :func:`equivariance_score`."""
    return equivariance_score(*view_features(feature_fn, images, transforms, generator, align, max_view_area,
                                             batch_views), reduction=reduction)


def equivariance_score_and_gradient(feature_fn, images, transforms, generator=None, align=aligned,
                                    max_view_area=None, batch_views=False):
    """(score Tensor[B], ∂score/∂images B×C×H×W) with one view's autograd graph alive at a time.

    The score is a sum of pairwise terms, so its gradient is Σ_i ∂S/∂f_i · ∂f_i/∂x, and ∂S/∂f_i only needs the
    other views' values: all views are computed once without a graph, then each view again with its graph,
    back-propagated against the others held fixed. Same views and draws as :func:`compute_equivariance_score`;
    equal to autograd through it up to float summation order. Peak memory: one view's graph (not K + 1 of them),
    for K + 1 extra forwards.
    """
    _check_images(images)
    transforms = build_transforms(transforms)
    images = images.detach()
    params = sample_params(transforms, images.shape[0], generator)

    def view(i, x, sizes):
        return transformed_view(feature_fn, x, transforms[i - 1], params[i - 1], sizes, align, max_view_area)

    with torch.no_grad():  # every view's values (batched by size if asked: no graph, so no memory cost)
        fixed, sizes = all_views(feature_fn, images, transforms, params, align, max_view_area, batch_views)
        score = equivariance_score(*_split(fixed))
    grad = torch.zeros_like(images)
    for i in range(len(fixed)):
        x = images.clone().requires_grad_(True)
        with torch.enable_grad():
            live = identity_view(feature_fn, x, align)[0] if i == 0 else view(i, x, sizes)
            pairs = [_pair_cosine(f, fixed[j][level][0], m * fixed[j][level][1])
                     for j in range(len(fixed)) if j != i for level, (f, m) in enumerate(live)]
            grad += torch.autograd.grad(torch.stack(pairs).sum(), x)[0]
    return score, grad
