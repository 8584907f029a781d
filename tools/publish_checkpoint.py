"""Make a small, shareable checkpoint from a training checkpoint (as mmseg's publish_model.py does): drop the
optimizer and scheduler states, keep the weights and mmengine's meta, and record how it was trained.

    python tools/publish_checkpoint.py work_dirs/X/iter_2400.pth checkpoints/X.pth \
        --train-command "python tools/train.py configs/demo/X.py"
"""
import argparse
import hashlib
import os.path as osp

import mmequi  # noqa: F401  (safe loading of mmengine checkpoints)
import torch


def publish(src, dst, train_command=None):
    ckpt = torch.load(src, map_location='cpu')
    keep = {k: ckpt[k] for k in ('meta', 'state_dict') if k in ckpt}
    if train_command:
        keep.setdefault('meta', {})['train_command'] = train_command
    torch.save(keep, dst)
    with open(dst, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--train-command', help='command that produced the checkpoint, stored in meta')
    args = parser.parse_args(argv)
    sha = publish(args.src, args.dst, args.train_command)
    print(f'{args.dst}  sha256={sha}  {osp.getsize(args.dst) / 2**20:.2f} MiB')


if __name__ == '__main__':
    main()
