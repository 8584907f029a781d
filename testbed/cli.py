"""Generate the synthetic Cityscapes / VOC / COCO-format datasets (run from the checkout's root, where ``testbed``
is: it is not installed with mmequi).

    python -m testbed {cityscapes,voc,coco,all} [--out-dir data/synthetic] [--seed 0]
                      [--num-train N] [--num-val N] [--force]

Each dataset goes to ``<out-dir>/<name>``; an existing identical generation is kept (see
``--force``). Without ``--num-train`` / ``--num-val`` each generator uses its own default.
"""
import argparse
import os
import sys
import time

from testbed import GENERATORS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dataset', choices=[*GENERATORS, 'all'])
    parser.add_argument('--out-dir', default=os.path.join('data', 'synthetic'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=None)
    parser.add_argument('--num-val', type=int, default=None)
    parser.add_argument('--force', action='store_true', help='regenerate even if up to date')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    names = list(GENERATORS) if args.dataset == 'all' else [args.dataset]
    counts = {k: v for k, v in (('num_train', args.num_train), ('num_val', args.num_val))
              if v is not None}
    for name in names:
        start = time.perf_counter()
        try:
            root = GENERATORS[name](os.path.join(args.out_dir, name), seed=args.seed,
                                    force=args.force, **counts)
        except ValueError as err:
            sys.exit(f'error: {err}')
        print(f'{name}: {root} ({time.perf_counter() - start:.1f}s)')


if __name__ == '__main__':
    main()
