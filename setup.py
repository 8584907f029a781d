"""mmequi: test-time equivariance defense and adversarial evaluation for mmsegmentation / mmdetection."""
import os.path as osp

from setuptools import find_packages, setup


def read_version():
    namespace = {}
    with open(osp.join(osp.dirname(__file__), 'mmequi', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


# Versions that were verified to work together (see README "Install"). mmcv must be 2.1.x *with* its compiled
# ops (mmseg/mmdet refuse >= 2.2; mmcv-lite lacks nms/RoIAlign). setuptools < 81 keeps ``pkg_resources``, which
# mmcv's build and mmengine's ``mmseg::``/``mmdet::`` config lookups need at run time.
install_requires = [
    'torch>=2.1,<2.14',
    'setuptools>=77.0.3,<81',
    'mmcv>=2.1.0,<2.2.0',
    'mmengine==0.10.7',
    'mmsegmentation==1.2.2',
    'mmdet==3.3.0',
    'ftfy',
    'regex',
    'pycocotools',
    'numpy',
    'opencv-python',
    'Pillow',
    'matplotlib',
]

setup(
    name='mmequi',
    version=read_version(),
    description='Test-time robustness through equivariance for OpenMMLab segmentation and detection models',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools', 'testbed', 'testbed.*')),
    # The attack/defense/model configs ship with the package: mmequi/.mim/configs links to configs/ in a checkout
    # (the wheel gets copies), so `mmequi-test --attack NAME` and `_base_ = ['mmequi::_base_/...']` resolve after
    # a plain `pip install .`.
    package_data={'mmequi': ['.mim/model-index.yml', '.mim/configs/*/*.py', '.mim/configs/*/*/*.py',
                             '.mim/configs/*/*/*/*.py']},
    entry_points={'console_scripts': ['mmequi-test = mmequi.apis.test:cli']},
    python_requires='>=3.9',
    install_requires=install_requires,
    extras_require={'tests': ['pytest', 'hypothesis']},
    license='Apache-2.0',
)
