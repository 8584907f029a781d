"""Publish a ``tools/benchmark_defense.py`` work dir into docs, or restore a work dir from docs to resume it.

    python tools/misc/publish_cells.py WORK_DIR DOCS_DIR            # benchmark.md/.csv, pareto.png, cells/*.json
    python tools/misc/publish_cells.py WORK_DIR DOCS_DIR --restore  # cells/<name>/cell.json + per-image records

A published benchmark cell is its record (``cell.json``) with its per-image records inline (``per_image_records``),
one JSON file per cell. ``--restore`` also takes a published robustness report part (``make headline``'s
``publish``: ``cells.json``, the list of records, beside the per-image files they name). Restored, every published
cell is a finished cell of the work dir again (``CellRunner`` skips it), so a run started with more settings or
attacks computes only the new cells.
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


def published_cells(docs_dir):
    """(cell name, record, per-image rows) of every published cell: a benchmark's cells/*.json or a report's
    cells.json (its per-image files beside it)."""
    for published in sorted(glob.glob(osp.join(docs_dir, 'cells', '*.json'))):
        with open(published) as f:
            record = json.load(f)
        yield osp.splitext(osp.basename(published))[0], record, record.pop('per_image_records')
    if osp.isfile(osp.join(docs_dir, 'cells.json')):
        with open(osp.join(docs_dir, 'cells.json')) as f:
            records = json.load(f)
        for record in records:  # per_image is cells/<name>/<run>/per_image.jsonl
            with open(osp.join(docs_dir, record['per_image'])) as f:
                yield record['per_image'].split('/')[1], record, [json.loads(line) for line in f]


def restore(work_dir, docs_dir):
    for name, record, rows in published_cells(docs_dir):
        cell_dir = osp.join(work_dir, 'cells', name)
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
