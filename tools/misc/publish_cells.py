"""Publish a ``tools/benchmark_defense.py`` work dir into docs, or restore one from docs to resume it.

    python tools/misc/publish_cells.py WORK_DIR DOCS_DIR            # benchmark.md/.csv, pareto.png, cells/*.json
    python tools/misc/publish_cells.py WORK_DIR DOCS_DIR --restore  # cells/<name>/cell.json + per-image records

A published cell is its record (``cell.json``) with its per-image records inline (``per_image_records``), one JSON
file per cell. Restored, every published cell is a finished cell of the work dir again (``CellRunner`` skips it),
so a run started with more settings computes only the new cells.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil


def publish(work_dir, docs_dir):
    os.makedirs(osp.join(docs_dir, 'cells'), exist_ok=True)
    for name in ('benchmark.md', 'benchmark.csv', 'pareto.png'):
        if osp.isfile(osp.join(work_dir, name)):
            shutil.copy(osp.join(work_dir, name), docs_dir)
    for done in sorted(glob.glob(osp.join(work_dir, 'cells', '*', 'cell.json'))):
        with open(done) as f:
            record = json.load(f)
        with open(osp.join(work_dir, record['per_image'])) as f:
            record['per_image_records'] = [json.loads(line) for line in f]
        with open(osp.join(docs_dir, 'cells', osp.basename(osp.dirname(done)) + '.json'), 'w') as f:
            json.dump(record, f, indent=1)


def restore(work_dir, docs_dir):
    for published in sorted(glob.glob(osp.join(docs_dir, 'cells', '*.json'))):
        with open(published) as f:
            record = json.load(f)
        rows = record.pop('per_image_records')
        cell_dir = osp.join(work_dir, 'cells', osp.splitext(osp.basename(published))[0])
        if osp.isfile(osp.join(cell_dir, 'cell.json')):
            continue  # the work dir's own record wins
        os.makedirs(osp.dirname(osp.join(work_dir, record['per_image'])), exist_ok=True)
        with open(osp.join(work_dir, record['per_image']), 'w') as f:
            f.writelines(json.dumps(row) + '\n' for row in rows)
        with open(osp.join(cell_dir, 'cell.json'), 'w') as f:
            json.dump(record, f, indent=2)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('work_dir')
    parser.add_argument('docs_dir')
    parser.add_argument('--restore', action='store_true', help='docs -> work dir (to resume a run)')
    args = parser.parse_args()
    (restore if args.restore else publish)(args.work_dir, args.docs_dir)
