"""Install hvlm: ``pip install -e .`` (add ``[tests]`` for the test tools)."""
import os.path as osp

from setuptools import find_packages, setup


def read_requirements(name: str) -> list:
    """Read ``requirements/<name>.txt``, skipping comments and blanks."""
    path = osp.join(osp.dirname(__file__), 'requirements', f'{name}.txt')
    with open(path) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join(osp.dirname(__file__), 'hvlm', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='hvlm',
    version=read_version(),
    description='Hierarchical video-language models for long videos, '
    'the OpenMMLab way',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(
        exclude=('configs', 'configs.*', 'tools', 'tools.*', 'tests',
                 'tests.*', 'docs', 'docs.*')),
    include_package_data=True,
    install_requires=read_requirements('runtime'),
    extras_require={'tests': read_requirements('tests')},
    zip_safe=False,
)
