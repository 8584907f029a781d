"""SegRobustModel and RobustTestHook on a small mmseg segmentor: bounds, no parameter change, batch independence,
feature layers, config errors, and the hook in a real mmengine test run."""
import copy
import json

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from conftest import SEG_CONFIG

import mmequi  # noqa: F401
from mmequi.models import SegRobustModel, robust_model_for

FAST_ATTACK = dict(type='PGD', eps=4, step_size=1, steps=3)
FAST_DEFENSE = dict(type='EquivariancePurifier', num_views=2, eps=6, steps=2)


@pytest.fixture
def segmentor(demo_segmentor):
    return demo_segmentor


def make_sample(height, width, seed, name):
    gen = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (3, height, width), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 19, (1, height, width), generator=gen)
    labels[:, :2] = 255  # some ignored pixels
    sample = SegDataSample(metainfo=dict(img_path=f'{name}.png', ori_shape=(height, width),
                                         img_shape=(height, width)))
    sample.gt_sem_seg = PixelData(data=labels)
    return image, sample


def batch(n, height=32, width=64):
    pairs = [make_sample(height, width, i, f'img{i}') for i in range(n)]
    return dict(inputs=[p[0] for p in pairs], data_samples=[p[1] for p in pairs])


def wrap(segmentor, **kwargs):
    return SegRobustModel(segmentor, **kwargs)


def test_robust_model_for_picks_the_seg_wrapper(segmentor):
    assert robust_model_for(segmentor) is SegRobustModel
    with pytest.raises(ValueError, match='no robust wrapper for Linear'):
        robust_model_for(torch.nn.Linear(2, 2))


def test_bounds_and_model_untouched(segmentor):
    state = copy.deepcopy(segmentor.state_dict())
    model = wrap(segmentor, attack=FAST_ATTACK, defense=FAST_DEFENSE, keep_images=True)
    data = batch(2)
    with torch.no_grad():  # as in mmengine's TestLoop
        results = model.test_step(data)
    for image, result in zip(data['inputs'], results):
        clean = image.float()
        images = {k: v.float() for k, v in result.robust_images.items()}
        assert torch.equal(images['clean'], clean)
        assert (images['attacked'] - clean).abs().max() <= 4
        assert (images['attacked'] - clean).abs().max() > 0
        assert (images['purified'] - images['attacked']).abs().max() <= 6
        assert set(result.equivariance_scores) == {'clean', 'attacked', 'purified'}
        assert result.pred_sem_seg.data.shape == (1, 32, 64)
        assert set(result.robust_seconds) == {'attack', 'defense'}
    for key, value in segmentor.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(p.grad is None for p in segmentor.parameters())


def test_batch_equals_single_images(segmentor):
    model = wrap(segmentor, attack=FAST_ATTACK, defense=FAST_DEFENSE, keep_images=True)
    together = model.test_step(batch(3))
    data = batch(3)
    for i, result in enumerate(together):
        alone = model.test_step(dict(inputs=[data['inputs'][i]], data_samples=[data['data_samples'][i]]))[0]
        for stage in ('attacked', 'purified'):
            assert torch.equal(result.robust_images[stage], alone.robust_images[stage])
        assert torch.equal(result.pred_sem_seg.data, alone.pred_sem_seg.data)
        assert result.equivariance_scores == alone.equivariance_scores


def test_attack_raises_the_task_loss(segmentor):
    model = wrap(segmentor, attack=dict(type='PGD', eps=8, step_size=2, steps=5), score=False)
    image, sample = make_sample(32, 64, 7, 'x')
    objective = model.task_objective(sample)
    clean = model.to_pixels(image)
    adv = model.attack.perturb(clean, objective, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert objective(adv) > objective(clean)


def test_missing_annotations_is_a_clear_error(segmentor):
    model = wrap(segmentor, attack=FAST_ATTACK)
    image, sample = make_sample(32, 64, 0, 'x')
    del sample.gt_sem_seg
    with pytest.raises(ValueError, match='gt_sem_seg'):
        model.test_step(dict(inputs=[image], data_samples=[sample]))


@pytest.mark.parametrize('feature, levels', [('logits', 1), ('decode', 1), ('backbone', 4), ('backbone.3', 1),
                                             ('neck', 4)])
def test_feature_layers(segmentor, feature, levels):
    model = wrap(segmentor, feature=feature)
    out = model.feature_fn(torch.rand(1, 3, 32, 64) * 255)
    out = out if isinstance(out, list) else [out]
    assert len(out) == levels and all(f.dim() == 4 for f in out)
    if feature == 'logits':
        assert out[0].shape == (1, 19, 4, 8)  # output stride 8, before upsampling
    if feature == 'decode':
        assert out[0].shape[1] == segmentor.decode_head.conv_seg.in_channels


def test_scores_use_the_defenses_views(segmentor):
    """Reported scores measure the equivariance the defense restores: its views, never pooled."""
    model = wrap(segmentor, defense=FAST_DEFENSE)
    assert model.scorer.objective.transforms == model.defense.objective.transforms and len(
        model.scorer.objective.transforms) == FAST_DEFENSE['num_views']
    from mmequi.equivariance import loss, objectives
    pooled = wrap(segmentor, defense=dict(FAST_DEFENSE, type='InvariancePurifier'))
    assert pooled.scorer.objective.align is loss.aligned and pooled.defense.objective.align is objectives.pooled


def test_normalise_is_the_preprocessors_bgr_to_rgb_and_mean_std(segmentor):
    """Features see exactly what the model sees: the dataloader's BGR pixels swapped to RGB, then (x − mean) / std
    with the config's RGB statistics, and no padding."""
    preprocessor = Config.fromfile(SEG_CONFIG).model.data_preprocessor
    assert preprocessor.bgr_to_rgb
    pixels = torch.rand(2, 3, 30, 62) * 255
    mean, std = torch.tensor(preprocessor.mean).view(3, 1, 1), torch.tensor(preprocessor.std).view(3, 1, 1)
    expected = (pixels[:, [2, 1, 0]] - mean) / std
    assert torch.allclose(wrap(segmentor).normalise(pixels), expected, atol=1e-5)


def test_decode_feature_hook_is_removed(segmentor):
    """Purifying on the decode features works through a forward pre-hook that is removed afterwards."""
    model = wrap(segmentor, feature='decode', defense=FAST_DEFENSE)
    image, sample = make_sample(32, 64, 1, 'x')
    model.test_step(dict(inputs=[image], data_samples=[sample]))
    assert not segmentor.decode_head.conv_seg._forward_pre_hooks


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(feature='pixels'), ValueError, "unknown feature 'pixels'"),
    (dict(feature='backbone.9'), ValueError, 'has 4 levels'),
    (dict(attack=dict(type='NoSuchAttack')), ValueError, "unknown attack type 'NoSuchAttack'"),
    (dict(attack=dict(type='PGD', epsilon=4)), TypeError, "bad attack config for PGD.*epsilon"),
    (dict(attack=dict(type='PGD', eps=-1)), ValueError, 'eps must be a finite number >= 0'),
    (dict(defense=dict(type='EquivariancePurifier', transforms=[dict(type='Shear')])), ValueError,
     "unknown equivariance transform type 'Shear'"),
    (dict(defense='equivariance'), ValueError, 'defense must be None'),
])
def test_bad_settings_name_what_is_wrong(segmentor, kwargs, error, match):
    with pytest.raises(error, match=match):
        model = wrap(segmentor, **kwargs)
        model.feature_fn(torch.rand(1, 3, 32, 64) * 255)


def test_a_feature_the_model_cannot_give_is_refused_when_the_wrapper_is_built():
    """mmseg's own Mask2Former (random weights): its query-based head has no conv_seg, so 'decode' is refused with one
    message naming the reason and the features that work, before any forward; its 'logits' (the default) are its
    class map (tests/test_zoo.py)."""
    import os.path as osp

    import mmseg
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', 'mask2former',
                                   'mask2former_r50_8xb2-90k_cityscapes-512x1024.py'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model).eval()
    with pytest.raises(ValueError, match=r"feature 'decode' is not available on this EncoderDecoder: 'decode' catches "
                                         r"the input of the decode head's conv_seg; Mask2FormerHead has none; features "
                                         r"it supports: \['logits', 'backbone', 'neck'\]"):
        wrap(model, feature='decode')
    assert wrap(model, feature='neck.0').feature == 'neck.0' and wrap(model, feature='backbone').feature == 'backbone'


def test_decode_needs_a_head_with_conv_seg(segmentor):
    model = copy.deepcopy(segmentor)
    del model.decode_head.conv_seg
    with pytest.raises(ValueError, match=r"'decode' catches the input of the decode head's conv_seg; FCNHead has none;"
                                         r" features it supports: \['logits', 'backbone', 'neck'\]"):
        wrap(model, feature='decode')


def test_wrapper_is_test_only(segmentor):
    with pytest.raises(NotImplementedError, match='test-time wrapper'):
        wrap(segmentor).train_step({}, None)


def test_hook_wraps_inside_a_distributed_wrapper(segmentor):
    """RobustTestHook replaces the module inside MMDistributedDataParallel (gloo, one process) and adds the metrics."""
    import socket
    from types import SimpleNamespace

    import torch.distributed as dist
    from mmengine.logging import MMLogger
    from mmengine.model import MMDistributedDataParallel

    from mmequi.evaluation import EquivarianceMetric, RobustRecordMetric
    from mmequi.hooks import RobustTestHook

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1)
    try:
        ddp = MMDistributedDataParallel(module=segmentor)
        runner = SimpleNamespace(model=ddp, test_loop=SimpleNamespace(evaluator=SimpleNamespace(metrics=[])),
                                 logger=MMLogger.get_instance('test_ddp_hook'))
        RobustTestHook(attack=FAST_ATTACK, defense=FAST_DEFENSE).before_test(runner)
        assert runner.model is ddp and isinstance(ddp.module, SegRobustModel) and ddp.module.module is segmentor
        assert [type(m) for m in runner.test_loop.evaluator.metrics] == [EquivarianceMetric, RobustRecordMetric]
        (result, ) = ddp.test_step(batch(1))
        assert set(result.equivariance_scores) == {'clean', 'attacked', 'purified'}
    finally:
        dist.destroy_process_group()


def test_hook_refuses_an_attack_on_a_test_pipeline_without_annotations(segmentor):
    """An attack needs the ground truth: a test pipeline that loads none is refused when the hook wraps the model,
    naming the step to add, before the first image; the same pipeline with the step, or without an attack, runs."""
    from types import SimpleNamespace

    from mmcv.transforms import LoadImageFromFile
    from mmengine.logging import MMLogger
    from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs

    from mmequi.hooks import RobustTestHook

    def runner(*steps):
        pipeline = SimpleNamespace(transforms=[LoadImageFromFile(), *steps, PackSegInputs()])  # a Compose's list
        loop = SimpleNamespace(evaluator=SimpleNamespace(metrics=[]),
                               dataloader=SimpleNamespace(dataset=SimpleNamespace(pipeline=pipeline)))
        return SimpleNamespace(model=segmentor, test_loop=loop, logger=MMLogger.get_instance('test_no_annotations'))
    with pytest.raises(ValueError, match=r"needs gt_sem_seg in the test data: add dict\(type='LoadAnnotations'\)"):
        RobustTestHook(attack=FAST_ATTACK, defense=FAST_DEFENSE).before_test(runner())
    assert isinstance(runner().model, type(segmentor))
    for hook, with_steps in ((RobustTestHook(attack=FAST_ATTACK), (LoadAnnotations(), )),
                             (RobustTestHook(defense=FAST_DEFENSE), ())):
        ran = runner(*with_steps)
        hook.before_test(ran)
        assert isinstance(ran.model, SegRobustModel)


def test_attack_cache_reuses_the_attacked_images_and_passes_are_counted(segmentor, tmp_path):
    cache = str(tmp_path / 'cache')
    first = wrap(segmentor, attack=FAST_ATTACK, score=False, keep_images=True, attack_cache=cache)
    computed = first.test_step(batch(2))
    assert len(list((tmp_path / 'cache').glob('*.pt'))) == 2 and all('attack' in r.robust_seconds for r in computed)
    again = wrap(segmentor, attack=FAST_ATTACK, defense=FAST_DEFENSE, score=False, keep_images=True,
                 attack_cache=cache)
    reused = again.test_step(batch(2))
    fresh = wrap(segmentor, attack=FAST_ATTACK, defense=FAST_DEFENSE, score=False, keep_images=True).test_step(batch(2))
    for a, b, c in zip(computed, reused, fresh):
        assert 'attack' not in b.robust_seconds  # loaded, not attacked again
        assert torch.equal(a.robust_images['attacked'], b.robust_images['attacked'])
        assert torch.equal(b.robust_images['purified'], c.robust_images['purified'])
        # K = 2 views (×2 and ×0.3 rescales): 1 + 4·r + 0.09·r' image areas with a graph per step, r ≈ 0.8–1.2
        assert 2 * (1 + 4 * 0.7) < b.robust_passes['forward_backward'] < 2 * (1 + 4 * 1.3 + 0.2)
    other = wrap(segmentor, attack=dict(FAST_ATTACK, eps=2), score=False, attack_cache=cache)
    assert all('attack' in r.robust_seconds for r in other.test_step(batch(1)))  # another attack: not reused


def test_feature_window_stitches_features_of_large_inputs(segmentor):
    """Window by window, as mmseg's slide inference: the stitched map has the whole input's feature size and,
    with windows that see all of it (a stride-8 FCN whose windows overlap by most of their size), stays close to
    the whole-input features; inputs within the crop are not windowed at all."""
    whole = wrap(segmentor)
    windowed = wrap(segmentor, feature_window=dict(crop_size=(64, 128), stride=(32, 64)))
    pixels = torch.rand(1, 3, 128, 256, generator=torch.Generator().manual_seed(0)) * 255
    reference, stitched = whole.feature_fn(pixels), windowed.feature_fn(pixels)
    assert stitched.shape == reference.shape == (1, 19, 16, 32)
    assert (stitched - reference).abs().mean() < 0.5 * reference.abs().mean()
    small = pixels[..., :64, :128]
    assert torch.equal(windowed.feature_fn(small), whole.feature_fn(small))
    levels = wrap(segmentor, feature='backbone', feature_window=dict(crop_size=(64, 128), stride=(32, 64)))
    assert [f.shape[-2:] for f in levels.feature_fn(pixels)] == [f.shape[-2:] for f in wrap(
        segmentor, feature='backbone').feature_fn(pixels)]
    with pytest.raises(ValueError, match='feature_window'):
        wrap(segmentor, feature_window=dict(crop_size=(64, 128), stride=(128, 64)))


def test_robustness_json_is_written_by_rank_0_only(segmentor, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from mmequi.evaluation import RobustRecordMetric
    from mmequi.hooks import RobustTestHook, robust_test_hook
    hook = RobustTestHook(attack=FAST_ATTACK)
    hook.model = wrap(segmentor, attack=FAST_ATTACK)
    hook.records = RobustRecordMetric()
    hook.records.summary = dict(seconds_per_image=dict(attack=1.0), passes_per_image={}, images=1)
    runner = SimpleNamespace(log_dir=str(tmp_path), logger=SimpleNamespace(info=lambda *a: None))
    monkeypatch.setattr(robust_test_hook, 'is_main_process', lambda: False)
    hook.after_test_epoch(runner, {'mIoU': 1.0})
    assert not (tmp_path / 'robustness.json').exists()
    monkeypatch.setattr(robust_test_hook, 'is_main_process', lambda: True)
    hook.after_test_epoch(runner, {'mIoU': 1.0})
    assert json.loads((tmp_path / 'robustness.json').read_text())['images'] == 1


def test_per_image_figures_match_mmseg_iou_metric():
    """The per-image record's class areas and IoUs are mmseg's IoUMetric's on that image (ignored pixels dropped)."""
    from mmengine.structures import PixelData
    from mmseg.evaluation import IoUMetric
    from mmseg.structures import SegDataSample

    from mmequi.evaluation import per_image_metrics
    generator = torch.Generator().manual_seed(0)
    label = torch.randint(0, 6, (1, 40, 50), generator=generator)
    label[:, :5] = 255
    predicted = torch.where(torch.rand(1, 40, 50, generator=generator) < 0.6, label,
                            torch.randint(0, 7, (1, 40, 50), generator=generator))
    predicted[predicted == 255] = 6
    prediction, sample = SegDataSample(), SegDataSample()
    prediction.pred_sem_seg, sample.gt_sem_seg = PixelData(data=predicted), PixelData(data=label)
    figures = per_image_metrics(prediction, sample)
    area = IoUMetric.intersect_and_union(predicted[0], label[0], 7, 255)
    intersection, union, labelled = area[0], area[1], area[3]
    assert figures['class_areas'] == {c: [int(intersection[c]), int(union[c]), int(labelled[c])]
                                      for c in range(7) if union[c] > 0}
    assert figures['class_iou'] == pytest.approx({c: 100 * float(intersection[c] / union[c])
                                                  for c in range(7) if union[c] > 0})
    assert figures['aAcc'] == pytest.approx(100 * float(intersection.sum() / (label != 255).sum()))


def test_record_metric_writes_one_line_per_image_and_the_mean_cost(segmentor, tmp_path):
    """RobustRecordMetric reads the dicts mmengine's evaluator makes of the wrapper's results: one record per image in
    the order given (mmengine's collect_results puts every rank's in dataset order), its figures the same as from
    the data sample itself, and the run's mean seconds and passes per image."""
    from mmequi.evaluation import RobustRecordMetric, per_image_metrics
    with torch.no_grad():
        results = wrap(segmentor, attack=FAST_ATTACK, defense=FAST_DEFENSE).test_step(batch(2))
    metric = RobustRecordMetric(out_dir=str(tmp_path), data_root='.')
    metric.process({}, [r.to_dict() for r in results])
    assert metric.evaluate(2) == {}
    lines = [json.loads(line) for line in (tmp_path / 'per_image.jsonl').read_text().splitlines()]
    assert [line['img_path'] for line in lines] == ['img0.png', 'img1.png']
    for line, result in zip(lines, results):
        assert line['metrics']['mIoU'] == pytest.approx(per_image_metrics(result, result)['mIoU'])
        assert line['equivariance'] == pytest.approx(result.equivariance_scores)
    assert metric.summary['images'] == 2
    assert metric.summary['seconds_per_image']['defense'] == pytest.approx(
        sum(r.robust_seconds['defense'] for r in results) / 2)
    assert metric.summary['passes_per_image']['forward_backward'] == pytest.approx(
        sum(r.robust_passes['forward_backward'] for r in results) / 2)
