"""Peak memory of one purifier step, or of one forward + backward pass of its largest view, measured in a fresh
process (``tools/benchmark_defense.py --memory`` starts one per figure, so no figure inherits another's peak):

    python -m mmequi.apis.memory CONFIG HEIGHT WIDTH {largest_view|step:K} [--grad-per-view True|False] [--feature F]

prints ``MIB <peak growth in MiB>`` (CUDA: peak allocated; CPU: growth of the process's peak RSS). The model is built
from CONFIG with random weights; the image is random, of HEIGHT × WIDTH.
"""
import argparse
import resource

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmequi  # noqa: F401  (fills the registries)
from mmequi.apis.config import load_config, task_scope
from mmequi.defenses import EquivariancePurifier
from mmequi.models import robust_model_for


def memory_probe(config, height, width, what, feature=None, grad_per_view=True):
    """Peak memory growth (MiB) of ``what`` ('step:K' or 'largest_view') in this process."""
    cfg = load_config(config)
    scope = task_scope(cfg)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(Config.fromfile(config).model).to(device).eval()
    wrapper = robust_model_for(model)(model, feature=feature, score=False)
    pixels = torch.rand(1, 3, height, width, device=device) * 255
    with torch.no_grad():
        wrapper.feature_fn(pixels[..., :32, :32])  # warm up the allocator and lazy initialisation

    def current():
        if device == 'cuda':
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / 2 ** 20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 10

    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    before = current()
    if what == 'largest_view':  # the ×2 rescale with the widest aspect jitter (1.2)
        big = torch.nn.functional.interpolate(pixels, size=(2 * height, int(2.4 * width)), mode='bilinear')
        big.requires_grad_(True)
        with torch.enable_grad():
            out = wrapper.feature_fn(big)
            torch.autograd.grad(sum(o.sum() for o in (out if isinstance(out, list) else [out])), big)
    elif what.startswith('step:'):
        EquivariancePurifier(num_views=int(what.split(':')[1]), steps=1, grad_per_view=grad_per_view).purify(
            pixels, wrapper.feature_fn, torch.Generator().manual_seed(0))
    else:
        raise ValueError(f"what={what!r}: expected 'largest_view' or 'step:K'")
    return current() - before


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('height', type=int)
    parser.add_argument('width', type=int)
    parser.add_argument('what', help="'largest_view' or 'step:K'")
    parser.add_argument('--grad-per-view', type=lambda v: v.lower() == 'true', default=True)
    parser.add_argument('--feature')
    args = parser.parse_args(argv)
    print('MIB', memory_probe(args.config, args.height, args.width, args.what, args.feature, args.grad_per_view))


if __name__ == '__main__':
    main()
