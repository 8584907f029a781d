"""Train the rotation self-supervision baseline's head (``RotationPurifier``) for a trained mmseg/mmdet model.

The model stays frozen; a small MLP learns to tell the four rotations of each training image apart from the model's
pooled features (``--feature``, a name as in ``--feature`` of tools/test.py). Its accuracy on the test split is
printed and stored in the checkpoint with the command that made it.

    python tools/train_rotation_head.py CONFIG CHECKPOINT --out HEAD.pth [--feature backbone.-1] [--iters 150]
"""
import argparse
import sys
import time

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmengine.utils import ProgressBar

import mmequi  # noqa: F401  (registers mmequi, allow-lists checkpoint types)
from mmequi.apis.config import DictAction, load_config
from mmequi.defenses.rotation import RotationHead, rotation_features, save_rotation_head
from mmequi.models import robust_model_for


def pooled_rotations(wrapper, feature, batch):
    """Every image of a dataloader batch in its four rotations -> (pooled features 4B×C, labels 4B); the model is
    frozen, so no graph is kept."""
    def feature_fn(pixels):
        return wrapper.features(wrapper.normalise(pixels), feature)
    with torch.no_grad():
        pooled, labels = zip(*[rotation_features(feature_fn, wrapper.to_pixels(image)) for image in batch['inputs']])
    return torch.cat(pooled), torch.cat(labels)


def accuracy(head, wrapper, feature, loader):
    correct = total = 0
    for batch in loader:
        pooled, labels = pooled_rotations(wrapper, feature, batch)
        with torch.no_grad():
            correct += int((head(pooled).argmax(1) == labels).sum())
        total += len(labels)
    return correct / max(total, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='where to write the head checkpoint')
    parser.add_argument('--feature', default='backbone.-1',
                        help="the model's feature the head reads (default: the backbone's last stage)")
    parser.add_argument('--iters', type=int, default=150, help='training batches')
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--hidden', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.iters < 1:
        raise ValueError(f'--iters must be >= 1, got {args.iters}')
    start = time.time()
    torch.manual_seed(args.seed)
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model = model.to(device).eval().requires_grad_(False)
    wrapper = robust_model_for(model)(model, score=False)
    feature = wrapper.check_feature(args.feature)

    train_loader = Runner.build_dataloader(cfg.train_dataloader, seed=args.seed)
    head = None
    bar, step, losses = ProgressBar(args.iters), 0, []
    while step < args.iters:
        for batch in train_loader:
            pooled, labels = pooled_rotations(wrapper, feature, batch)
            if head is None:
                head = RotationHead(pooled.shape[1], args.hidden).to(device)
                optimizer = torch.optim.Adam(head.parameters(), lr=args.lr)
            loss = F.cross_entropy(head(pooled), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
            bar.update()
            if step == args.iters:
                break
    head.eval()
    test_accuracy = accuracy(head, wrapper, feature, Runner.build_dataloader(cfg.test_dataloader, seed=args.seed))
    meta = dict(feature=feature, config=args.config, checkpoint=args.checkpoint, iters=args.iters, lr=args.lr,
                seed=args.seed, final_train_loss=sum(losses[-10:]) / len(losses[-10:]), test_accuracy=test_accuracy,
                seconds=time.time() - start, command=' '.join(['python', 'tools/train_rotation_head.py', *argv]))
    save_rotation_head(args.out, head.cpu(), meta)
    print(f'\nrotation head: feature {feature}, train loss {meta["final_train_loss"]:.3f}, '
          f'test accuracy {test_accuracy:.3f} (chance 0.25), {meta["seconds"]:.0f} s -> {args.out}')
    return meta


if __name__ == '__main__':
    main()
