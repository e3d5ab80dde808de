"""Load annotation pickles without running the code a pickle can carry.

``pickle.load`` calls whatever callable a file names, so a crafted
annotation file runs code when it is read. Action Genome ships its
annotations as pickles of plain containers, strings, numbers and numpy
arrays; :func:`restricted_load` rebuilds exactly those and refuses every
other global with the file named, before anything is called.
"""
import builtins
import codecs
import pickle
from typing import Any

import numpy as np

__all__ = ['restricted_load', 'UnsafePickleError']

# (module, name) pairs a numpy array or scalar needs to be rebuilt, under
# numpy 2 (``numpy._core``) and numpy 1 (``numpy.core``) module names.
_NUMPY_GLOBALS = {
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
}
for _mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
    _NUMPY_GLOBALS[(_mod, '_reconstruct')] = np._core.multiarray._reconstruct
    _NUMPY_GLOBALS[(_mod, 'scalar')] = np._core.multiarray.scalar
# plain builtins a pickle of containers may name (protocol 0/1 files)
_BUILTINS = {
    ('builtins', name): getattr(builtins, name)
    for name in ('list', 'dict', 'tuple', 'set', 'frozenset', 'bytearray',
                 'int', 'float', 'complex', 'bool', 'str', 'bytes')
}
_BUILTINS.update({('__builtin__', n): f for (_, n), f in _BUILTINS.items()})
_BUILTINS[('collections', 'OrderedDict')] = dict
# protocol-2 pickles from Python 3 store bytes as encode(latin1 text)
_BUILTINS[('_codecs', 'encode')] = codecs.encode


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global outside the allowed plain types."""


class _RestrictedUnpickler(pickle.Unpickler):

    def __init__(self, file, path: str) -> None:
        super().__init__(file, encoding='latin1')
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[key]
        if key in _BUILTINS:
            return _BUILTINS[key]
        # numpy dtype classes (numpy.dtypes.Float32DType, ...) are types
        # with no side effect when called by the unpickler
        if module == 'numpy.dtypes' and name.endswith('DType') and \
                isinstance(getattr(np.dtypes, name, None), type):
            return getattr(np.dtypes, name)
        raise UnsafePickleError(
            f'{self._path}: refusing to load global {module}.{name}; an '
            'annotation pickle may hold only dicts, lists, tuples, sets, '
            'strings, numbers and numpy arrays (the file may be corrupt or '
            'crafted to run code)')


def restricted_load(path: str) -> Any:
    """Read a pickle of plain containers, numbers, strings and numpy arrays.

    Args:
        path (str): The pickle file.

    Returns:
        The unpickled object.

    Raises:
        UnsafePickleError: The file names any other global (a class, a
            function such as ``os.system``); nothing it names is called.
        pickle.UnpicklingError: The file is not a readable pickle; the
            message names it.
    """
    with open(path, 'rb') as f:
        try:
            return _RestrictedUnpickler(f, path).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError,
                AttributeError, IndexError, KeyError) as err:
            raise pickle.UnpicklingError(
                f'{path}: not a readable annotation pickle '
                f'({type(err).__name__}: {err})') from err
