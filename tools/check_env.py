"""Exit 0 when everything mmequi needs is installed at the right versions (mmcv with its compiled ops), else
print what is missing and exit 1. ``make`` calls it to decide whether to install (fast when nothing is missing)."""
import importlib
import importlib.metadata as md
import sys

REQUIRED = {  # distribution -> version prefix that must match
    'torch': '', 'mmcv': '2.1.', 'mmengine': '0.10.7', 'mmsegmentation': '1.2.2', 'mmdet': '3.3.0',
    'ftfy': '', 'regex': '', 'pycocotools': '', 'matplotlib': '', 'pytest': '', 'hypothesis': '', 'mmequi': '',
    'torchattacks': '3.5.',  # tests only: the reference implementations of PGD, MIM and APGD
}


def problems():
    found = []
    for dist, prefix in REQUIRED.items():
        try:
            version = md.version(dist)
        except md.PackageNotFoundError:
            found.append(f'{dist} is not installed')
            continue
        if not version.startswith(prefix):
            found.append(f'{dist} {version} installed, {prefix}* needed')
    try:
        import setuptools
        if int(setuptools.__version__.split('.')[0]) >= 81:
            found.append(f'setuptools {setuptools.__version__}: pkg_resources needs < 81')
        importlib.import_module('pkg_resources')
    except ImportError as e:
        found.append(f'pkg_resources missing ({e})')
    if not found:
        try:  # mmcv built without ops imports fine and fails later: check the ops themselves
            from mmcv.ops import RoIAlign, nms  # noqa: F401
        except ImportError as e:
            found.append(f'mmcv has no compiled ops ({e})')
    return found


if __name__ == '__main__':
    missing = problems()
    for line in missing:
        print(f'check_env: {line}')
    sys.exit(1 if missing else 0)
