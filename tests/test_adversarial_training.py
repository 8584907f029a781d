"""Adversarial training (mmequi/training, AdversarialTrainingHook): the examples it trains on, what the attack may
and may not touch, one short training run, and a distributed run against one process."""
import copy
import socket

import pytest
import torch
from conftest import SEG_CHECKPOINT, SEG_CONFIG, build_demo_model

from mmequi.training import AdversarialPreprocessor, TrainingLoss
from mmequi.training.adversarial import padded

PGD = dict(type='PGD', eps=4, step_size=2, steps=3)
# L2 PGD without a random start: examples that depend on the images alone and continuously on the weights (an L∞
# step's sign turns float noise in a near-zero gradient into a whole step, and that into different weights).
SMOOTH = dict(type='PGD', norm='l2', eps=300, step_size=150, steps=3, random_start=False)


@pytest.fixture(scope='module')
def train_items(tmp_path_factory):
    """8 items of the demo config's training split through its training pipeline (random resize, crop, flip,
    photometric distortion): uint8 C×H×W images of several sizes and their label maps."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import set_random_seed
    from mmseg.registry import DATASETS

    from testbed import generate_cityscapes
    root = generate_cityscapes(tmp_path_factory.mktemp('cityscapes'), num_train=8, num_val=1)
    cfg = copy.deepcopy(Config.fromfile(SEG_CONFIG).train_dataloader.dataset)
    cfg.data_root = str(root)
    set_random_seed(0)  # the pipeline's random resize, crop, flip and distortion draw from numpy and random
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = DATASETS.build(cfg)
        return [dataset[i] for i in range(8)]


def batch(items):
    return dict(inputs=[item['inputs'] for item in items], data_samples=[item['data_samples'] for item in items])


def segmentor():
    return build_demo_model(SEG_CONFIG, SEG_CHECKPOINT, 'mmseg')


def robust_loss(model, data, attack=PGD):
    """The mean training loss of the batch's PGD examples (what adversarial training lowers)."""
    maker = AdversarialPreprocessor(model.data_preprocessor, model, attack)
    return training_loss(model, maker.adversarial(data['inputs'], data['data_samples']), data['data_samples'])


def training_loss(model, images, samples):
    pixels, _, sizes = padded(images, 'cpu')
    with torch.no_grad():
        return float(TrainingLoss(model, model.data_preprocessor, samples, 0, sizes)(pixels)[0])


def test_training_examples_stay_within_eps_in_range_and_raise_the_training_loss(train_items):
    """Every image of the batch (several sizes: the crop of a downscaled image is smaller) comes back at its own size,
    within ε = 4 of itself, in 0–255, and not equal to it; the batch the preprocessor pads (to 128×256) has the pad
    value outside each image; the examples' training loss is well above the clean images' (a wrong sign or the
    clean image returned would not be)."""
    model = segmentor()
    data = batch(train_items)
    assert len({tuple(image.shape) for image in data['inputs']}) > 1
    maker = AdversarialPreprocessor(model.data_preprocessor, model, PGD)
    adv = maker.adversarial(data['inputs'], data['data_samples'])
    for image, example in zip(data['inputs'], adv):
        assert example.shape == image.shape and example.dtype == torch.float32
        change = (example - image.float()).abs()
        assert change.max() <= 4 + 1e-4 and change.mean() > 1.0
        assert example.min() >= 0 and example.max() <= 255
    packed = maker(dict(data), training=True)
    assert maker.share == 1.0 and packed['inputs'].shape[-2:] == (128, 256)
    for i, image in enumerate(data['inputs']):
        h, w = image.shape[-2:]
        padding = torch.ones_like(packed['inputs'][i, 0], dtype=torch.bool)
        padding[:h, :w] = False
        assert (packed['inputs'][i][:, padding] == 0).all()  # mmseg pads normalised inputs with 0
    clean = training_loss(model, data['inputs'], data['data_samples'])
    assert training_loss(model, adv, data['data_samples']) > 1.5 * clean


def test_the_attack_steps_no_parameter_and_changes_no_statistics(train_items):
    """Making the examples leaves every parameter, gradient and batch-norm statistic as it was (the attack's
    gradients are taken on the images alone, in loss_mode), and every module's training flag."""
    model = segmentor().train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {m: m.training for m in model.modules()}
    AdversarialPreprocessor(model.data_preprocessor, model, PGD).adversarial(
        batch(train_items)['inputs'], batch(train_items)['data_samples'])
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert {m: m.training for m in model.modules()} == flags


def test_a_ratio_chooses_that_share_of_images_and_validation_passes_through(train_items):
    model = segmentor()
    data = batch(train_items)
    half = AdversarialPreprocessor(model.data_preprocessor, model, PGD, ratio=0.5)
    adv = half.adversarial(data['inputs'], data['data_samples'])
    changed = [not torch.equal(a, i.float()) for a, i in zip(adv, data['inputs'])]
    assert 0 < sum(changed) < len(changed) and half.share == sum(changed) / len(changed)
    none = AdversarialPreprocessor(model.data_preprocessor, model, PGD, ratio=1e-9)  # a batch with no image chosen
    assert none.adversarial(data['inputs'], data['data_samples']) == data['inputs'] and none.share == 0
    full = batch([item for item in train_items if tuple(item['inputs'].shape[-2:]) == (128, 256)])
    assert torch.equal(half(dict(full), False)['inputs'], model.data_preprocessor(dict(full), False)['inputs'])
    with pytest.raises(ValueError, match=r'in \[0, 1\]'):
        AdversarialPreprocessor(model.data_preprocessor, model, PGD, ratio=2)
    with pytest.raises(ValueError, match='attack on the model itself'):
        AdversarialPreprocessor(model.data_preprocessor, model, dict(type='BPDA', eps=4, step_size=1, steps=2))


def test_apgd_makes_its_examples_image_by_image():
    """APGD reads per-image loss values: it is run on each image alone; PGD and MIM sum the batch's loss."""
    from mmequi.registry import ATTACKS, build
    from mmequi.training.adversarial import sums_the_objective
    assert sums_the_objective(build(ATTACKS, PGD)) and sums_the_objective(build(ATTACKS, dict(PGD, type='MIM')))
    assert not sums_the_objective(build(ATTACKS, dict(type='APGD', eps=4, steps=3)))
    assert not sums_the_objective(build(ATTACKS, dict(PGD, seg_loss='cospgd')))


def test_images_attacked_together_get_what_each_gets_alone(train_items):
    """PGD and MIM attack the batch's images together (padded to one size, the padding outside what they may
    change, each image cropped back before the preprocessor): each example is what attacking its image alone
    gives, within float noise (SMOOTH: no random start, no sign; float noise can flip a max-pool's choice between
    two nearly equal inputs (flat, saturated regions have many), and with it the gradient of those pixels, so the
    comparison is of whole examples)."""
    model = segmentor()
    data = batch(train_items)
    maker = AdversarialPreprocessor(model.data_preprocessor, model, SMOOTH)
    together = maker.adversarial(data['inputs'], data['data_samples'])
    for image, sample, example in zip(data['inputs'], data['data_samples'], together):
        (alone, ) = maker.adversarial([image], [sample])
        change = (alone - image.float()).norm()
        assert change > 100 and (example - alone).norm() < 0.05 * change  # max-pool ties move a few pixels


def test_a_short_adversarial_training_run_lowers_the_robust_loss(train_items, tmp_path):
    """Twelve training steps with the hook (the demo config's optimizer, lr 5e-4, the same 8 items each step) lower
    the training loss of fresh PGD examples of those items, from the clean demo checkpoint."""
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.optim import build_optim_wrapper

    from mmequi.hooks import AdversarialTrainingHook
    model = segmentor()
    data = batch(train_items)
    before = robust_loss(model, data)
    cfg = Config.fromfile(SEG_CONFIG)
    optim = build_optim_wrapper(model, dict(cfg.optim_wrapper, optimizer=dict(cfg.optim_wrapper.optimizer, lr=5e-4)))
    runner = type('Runner', (), dict(model=model, logger=MMLogger.get_instance('adv_train'), iter=0))()
    hook = AdversarialTrainingHook(attack=PGD)
    hook.before_train(runner)
    model.train()
    for step in range(12):
        runner.iter = step
        hook.before_train_iter(runner, step)
        model.train_step(dict(data), optim)
    hook.after_train(runner)
    assert not isinstance(model.data_preprocessor, AdversarialPreprocessor)
    after = robust_loss(model.eval(), data)
    assert after < 0.8 * before, (before, after)


def train_worker(rank, world, port, items, out):
    """One process of the comparison, one thread: with world 2 a rank of a gloo group training its image of each
    pair under MMDistributedDataParallel; with world 1 one process training both. Rank 0 saves the weights."""
    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world)
    try:
        model, optim = deterministic_model()
        trained = MMDistributedDataParallel(module=model) if world > 1 else model
        maker = AdversarialPreprocessor(model.data_preprocessor, model, SMOOTH)
        model.data_preprocessor = maker
        for step in range(2):
            maker.step = step
            trained.train_step(batch(items[rank::world]), optim)
        if rank == 0:
            torch.save(model.state_dict(), out)
    finally:
        if world > 1:
            dist.destroy_process_group()


def deterministic_model():
    """The demo segmentor in training mode with its batch norms on their running statistics (a batch statistic
    over one rank's images is not one over the whole batch: that would differ without SyncBN, which needs CUDA) and
    its head's dropout off (each process draws its own masks)."""
    from mmengine.optim import OptimWrapper
    model = segmentor().train()
    for module in model.modules():
        if isinstance(module, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.dropout._DropoutNd)):
            module.eval()
    return model, OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.05))


def test_two_processes_train_like_one(train_items, tmp_path):
    """DDP over 2 CPU processes (gloo), one image of each pair per rank, against one process with both (one thread
    each): after two adversarial training steps (SMOOTH examples; the second made by the trained weights) the
    weights agree within float noise, and differ clearly from the starting ones. (Over more steps the float noise
    grows: a max-pool whose two largest inputs are nearly equal sends the examples' gradient to the other pixel.)"""
    import torch.multiprocessing as mp
    items = [item for item in train_items if tuple(item['inputs'].shape[-2:]) == (128, 256)][:2]
    assert len(items) == 2
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    runs = {}
    for world in (2, 1):  # each in processes of its own: the test process's threads and state are left alone
        runs[world] = str(tmp_path / f'world{world}.pth')
        mp.start_processes(train_worker, args=(world, port, items, runs[world]), nprocs=world, start_method='fork')
    start = deterministic_model()[0].state_dict()
    distributed, single = (torch.load(runs[world], weights_only=True) for world in (2, 1))
    weights = [k for k, v in start.items() if v.is_floating_point() and 'running' not in k]
    moved = max(float((single[k] - start[k]).abs().max()) for k in weights)
    gap = max(float((single[k] - distributed[k]).abs().max()) for k in weights)
    assert moved > 1e-3 and gap < 1e-5, (moved, gap)


def test_a_detector_trains_on_its_examples_of_several_sizes(tmp_path):
    """The demo Faster R-CNN's training batch (random resize: images of several sizes, boxes): each example within
    ε of its image at its own size, the detector's training loss higher on them, and one training step through the
    hook's preprocessor (its RPN and RoI sampling in the attack's loss from a fixed seed) with finite losses."""
    from mmengine.config import Config
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope
    from mmengine.runner import set_random_seed
    from mmdet.registry import DATASETS

    from conftest import DET_CHECKPOINT, DET_CONFIG
    from testbed import generate_coco
    root = generate_coco(tmp_path / 'coco', num_train=4, num_val=1)
    cfg = copy.deepcopy(Config.fromfile(DET_CONFIG).train_dataloader.dataset)
    cfg.data_root = str(root)
    set_random_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(cfg)
        items = [dataset[i] for i in range(4)]
    data = batch(items)
    assert len({tuple(image.shape) for image in data['inputs']}) > 1
    model = build_demo_model(DET_CONFIG, DET_CHECKPOINT, 'mmdet').train()
    maker = AdversarialPreprocessor(model.data_preprocessor, model, PGD)
    adv = maker.adversarial(data['inputs'], data['data_samples'])
    outside = sum(int(((image < 0) | (image > 255)).sum()) for image in data['inputs'])
    assert outside > 0  # mmdet's photometric distortion leaves the range: the examples are made of clipped images
    for image, example in zip(data['inputs'], adv):
        assert example.shape == image.shape and (example - image.clamp(0, 255)).abs().max() <= 4 + 1e-4
        assert example.min() >= 0 and example.max() <= 255
    assert training_loss(model, adv, data['data_samples']) > training_loss(model, data['inputs'],
                                                                           data['data_samples'])
    model.data_preprocessor = maker
    losses = model.train_step(dict(data), OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3)))
    assert all(torch.isfinite(v).all() for v in losses.values())
