"""``Module``: torch.nn.Module's bookkeeping over NumPy arrays.

A module keeps three ordered registries, exactly as torch does: ``_parameters``
(``Parameter`` arrays), ``_buffers`` (plain arrays, persistent unless registered
otherwise) and ``_modules`` (children). Attribute assignment routes values into them,
so a model written for torch.nn - same attribute names, same construction order - gets
the same ``state_dict`` keys in the same order and loads a torch checkpoint directly.

Layers that prepare their weights once (GEMM panels, reordered filters) override
``_weights_changed``: it runs whenever this module's parameters or buffers are replaced,
loaded, converted or deleted, so a cache never outlives the arrays it was built from.
Augmented assignment (``m.weight *= 2``) passes through ``__setattr__`` and is seen; so is
a write through a Parameter's index (``m.weight[...] = w``), and the packing layers also
notice other in-place writes that change the weight's first, middle or last element
(nn/_packed.py); after any other write call ``m._weights_changed()``, or assign or load.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from .._core import ShapeError
from .._validate import FLOAT_DTYPES, as_array, check_bool, module_device, numpy_dtype, typename
from .parameter import Parameter

__all__ = ["Module"]

# Counts the load_state_dict calls made so far. A load writes into the module's arrays in
# place, and an array may be shared with other modules (tied weights: ``b.weight =
# a.weight``), whose caches the loading module cannot reach: a cache records the count it was
# built at and is stale once the count has moved on (in_place_loads).
_in_place_loads = 0

_EXTRA_STATE = "_extra_state"  # torch's state_dict key for get_extra_state()


def in_place_loads() -> int:
    """How many load_state_dict calls have written into module arrays in this process."""
    return _in_place_loads


def _dtype_name(text: str) -> bool:
    try:
        np.dtype(text)
        return True
    except TypeError:
        return False


def _checkpoint_array(source, key: str) -> np.ndarray:
    """A state_dict value as an array; a torch tensor of a dtype NumPy lacks (bfloat16) is
    widened to float32 first (exactly), since loading casts to the parameter's dtype anyway."""
    try:
        return as_array(source, "load_state_dict", key)
    except TypeError:
        if not (hasattr(source, "__dlpack__") and hasattr(source, "is_floating_point") and source.is_floating_point()):
            raise
        return as_array(source.detach().float(), "load_state_dict", key)


def _torch_size(shape) -> str:
    # torch's load_state_dict messages print shapes this way; users compare them verbatim.
    return f"torch.Size({list(shape)})"


def _add_indent(text: str, spaces: int) -> str:
    first, *rest = text.split("\n")
    if not rest:
        return text
    pad = " " * spaces
    return "\n".join([first] + [pad + line if line.strip() else "" for line in rest])


def _is_torch_tensor(value) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "__dlpack__")


def _plain(array):
    return array if type(array) is np.ndarray else array.view(np.ndarray)


class RemovableHandle:
    """What ``register_forward_hook`` and ``register_forward_pre_hook`` return, as torch's
    ``torch.utils.hooks.RemovableHandle``: ``remove()`` (or leaving a ``with`` block)
    unregisters the hook; removing twice is harmless."""

    _next_id = 0

    def __init__(self, *registries) -> None:
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1
        self._registries = registries

    def remove(self) -> None:
        for registry in self._registries:
            if isinstance(registry, set):
                registry.discard(self.id)
            else:
                registry.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class Module:
    """Base class of every tensorops layer; subclass it and define ``forward``."""

    _version = 1
    training: bool

    def __init__(self) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "training", True)
        setattr_(self, "_parameters", {})
        setattr_(self, "_buffers", {})
        setattr_(self, "_non_persistent_buffers_set", set())
        setattr_(self, "_modules", {})
        setattr_(self, "_forward_pre_hooks", OrderedDict())
        setattr_(self, "_forward_hooks", OrderedDict())
        setattr_(self, "_hooks_with_kwargs", set())
        setattr_(self, "_hooks_always_called", set())

    def __setstate__(self, state: dict) -> None:
        # A module pickled before the hook registries existed gets empty ones, as torch does.
        self.__dict__.update(state)
        for name, empty in (("_forward_pre_hooks", OrderedDict), ("_forward_hooks", OrderedDict),
                            ("_hooks_with_kwargs", set), ("_hooks_always_called", set)):
            if name not in self.__dict__:
                object.__setattr__(self, name, empty())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        members = self.__dict__
        pre_hooks, hooks = members.get("_forward_pre_hooks"), members.get("_forward_hooks")
        if not pre_hooks and not hooks:
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(pre_hooks, hooks, args, kwargs)

    def _call_with_hooks(self, pre_hooks, hooks, args: tuple, kwargs: dict):
        # torch's order and return rules: pre-hooks may replace the arguments (a non-tuple
        # result becomes a 1-tuple), forward hooks may replace the output. When anything
        # raises (a pre-hook, forward, a hook), the always_call hooks not yet run still run,
        # with the output so far; an error of theirs is only a warning beside the first one.
        with_kwargs, always = self._hooks_with_kwargs, self._hooks_always_called
        output, ran = None, set()

        def call(hook_id, hook):
            return hook(self, args, kwargs, output) if hook_id in with_kwargs else hook(self, args, output)

        try:
            for hook_id, hook in list(pre_hooks.items()):
                if hook_id in with_kwargs:
                    result = hook(self, args, kwargs)
                    if result is not None:
                        if not (isinstance(result, tuple) and len(result) == 2):
                            raise RuntimeError(
                                "forward pre-hook must return None or a tuple of (new_args, new_kwargs), "
                                f"but got {result}.")
                        args, kwargs = result
                else:
                    result = hook(self, args)
                    if result is not None:
                        args = result if isinstance(result, tuple) else (result,)
            output = self.forward(*args, **kwargs)
            for hook_id, hook in list(hooks.items()):
                ran.add(hook_id)
                result = call(hook_id, hook)
                if result is not None:
                    output = result
            return output
        except Exception:
            for hook_id, hook in list(hooks.items()):
                if hook_id in always and hook_id not in ran:
                    try:
                        result = call(hook_id, hook)
                        if result is not None:
                            output = result
                    except Exception as exc:  # noqa: BLE001 - torch silences it beside the first error
                        warnings.warn("module forward hook with ``always_call=True`` raised an exception that was "
                                      f"silenced as another error was raised in forward: {exc}", stacklevel=2)
            raise

    def _add_hook(self, registry: OrderedDict, hook, prepend: bool, with_kwargs: bool,
                  always_call: bool = False) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {typename(hook)}")
        handle = RemovableHandle(registry, self._hooks_with_kwargs, self._hooks_always_called)
        registry[handle.id] = hook
        if with_kwargs:
            self._hooks_with_kwargs.add(handle.id)
        if always_call:
            self._hooks_always_called.add(handle.id)
        if prepend:
            registry.move_to_end(handle.id, last=False)
        return handle

    def register_forward_pre_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False):
        """Runs ``hook(module, args)`` before every ``forward`` (``hook(module, args, kwargs)``
        with ``with_kwargs=True``); a result other than None replaces the arguments.
        Returns a handle whose ``remove()`` unregisters it."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend, with_kwargs)

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False):
        """Runs ``hook(module, args, output)`` after every ``forward`` (``hook(module, args,
        kwargs, output)`` with ``with_kwargs=True``); a result other than None replaces the
        output. With ``always_call=True`` it also runs (with output None) when forward raises.
        Returns a handle whose ``remove()`` unregisters it."""
        return self._add_hook(self._forward_hooks, hook, prepend, with_kwargs, always_call)

    def _weights_changed(self) -> None:
        """Called after this module's parameters or buffers were replaced or reloaded.

        Layers that cache something derived from their weights drop it here. It can run
        during ``__init__`` (each registration calls it), before the subclass has set
        its own attributes.
        """

    # ---- registration -------------------------------------------------------------------

    def _check_member_name(self, kind: str, name, registry: dict) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {typename(name)}")
        if "." in name:
            raise KeyError(f"{kind} name can't contain \".\"")
        if name == "":
            raise KeyError(f"{kind} name can't be empty string \"\"")
        if hasattr(self, name) and name not in registry:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param) -> None:
        """Adds ``param`` (a ``Parameter`` or None) under ``name``."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_member_name("parameter", name, self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{typename(param)}' object to parameter '{name}' "
                "(tensorops.nn.Parameter or None required)")
        self._parameters[name] = param
        self._weights_changed()

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Adds the array ``tensor`` (or None) as a buffer; persistent buffers go into the
        state_dict. A torch tensor is kept as an array viewing its memory (zero-copy)."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_member_name("buffer", name, self._buffers)
        if tensor is not None and not isinstance(tensor, np.ndarray) and _is_torch_tensor(tensor):
            tensor = as_array(tensor, "register_buffer", name)
        if tensor is not None and not isinstance(tensor, np.ndarray):
            raise TypeError(
                f"cannot assign '{typename(tensor)}' object to buffer '{name}' (numpy.ndarray or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)
        self._weights_changed()

    def add_module(self, name: str, module) -> None:
        """Adds the child ``module`` (or None) under ``name``."""
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"{typename(module)} is not a Module subclass")
        if not isinstance(name, str):
            raise TypeError(f"module name should be a string. Got {typename(name)}")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        if "." in name:
            raise KeyError(f"module name can't contain \".\", got: {name}")
        if name == "":
            raise KeyError("module name can't be empty string \"\"")
        self._modules[name] = module

    register_module = add_module

    def _forget(self, name: str, *registries) -> None:
        for registry in registries:
            if name in registry:
                if isinstance(registry, dict):
                    del registry[name]
                else:
                    registry.discard(name)

    def __setattr__(self, name: str, value) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, self.__dict__, self._buffers, self._modules, self._non_persistent_buffers_set)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            # Unlike torch, a plain array replaces the parameter (wrapped, not copied).
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(
                    f"cannot assign '{typename(value)}' as parameter '{name}' "
                    "(tensorops.nn.Parameter, numpy.ndarray or None expected)")
            self.register_parameter(name, None if value is None else Parameter(value))
        else:
            modules = self.__dict__.get("_modules")
            if isinstance(value, Module):
                if modules is None:
                    raise AttributeError("cannot assign module before Module.__init__() call")
                self._forget(name, self.__dict__, self._parameters, self._buffers, self._non_persistent_buffers_set)
                modules[name] = value
            elif modules is not None and name in modules:
                if value is not None:
                    raise TypeError(
                        f"cannot assign '{typename(value)}' as child module '{name}' "
                        "(tensorops.nn.Module or None expected)")
                modules[name] = value
            else:
                buffers = self.__dict__.get("_buffers")
                if buffers is not None and name in buffers:
                    if value is not None and not isinstance(value, np.ndarray) and not _is_torch_tensor(value):
                        raise TypeError(
                            f"cannot assign '{typename(value)}' as buffer '{name}' (numpy.ndarray or None expected)")
                    self.register_buffer(name, value, name not in self._non_persistent_buffers_set)
                else:
                    object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # Only reached when normal lookup fails, i.e. for registered names.
        members = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = members.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters:
            del self._parameters[name]
            self._weights_changed()
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers_set.discard(name)
            self._weights_changed()
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def __dir__(self):
        keys = list(object.__dir__(self)) + list(self._parameters) + list(self._modules) + list(self._buffers)
        return sorted(key for key in set(keys) if not key[0].isdigit())

    # ---- traversal (torch's order: this module's members, then each child depth-first) ----

    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool):
        # Arrays are unhashable: a shared array is recognised by identity.
        seen = set()
        owners = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for owner_prefix, owner in owners:
            for name, array in getattr(owner, registry).items():
                if array is None or id(array) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(array))
                yield owner_prefix + ("." if owner_prefix else "") + name, array

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def apply(self, fn):
        """Calls ``fn`` on every child (recursively), then on this module; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def get_submodule(self, target: str):
        """The module at the dotted path ``target`` ("" is this module), as torch."""
        if target == "":
            return self
        module = self
        for item in target.split("."):
            if not hasattr(module, item):
                raise AttributeError(module._get_name() + " has no attribute `" + item + "`")
            module = getattr(module, item)
            if not isinstance(module, Module):
                raise AttributeError("`" + item + "` is not an nn.Module")
        return module

    def set_submodule(self, target: str, module, strict: bool = False) -> None:
        """Puts ``module`` at the dotted path ``target``, as torch; with ``strict`` the
        attribute must exist already."""
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        if not isinstance(module, Module):
            raise ValueError(f"`module` is not an nn.Module, found {type(module)}")
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if hasattr(parent, name):
            if not isinstance(getattr(parent, name), Module):
                raise AttributeError("`" + name + "` is not an nn.Module")
        elif strict:
            raise AttributeError(parent._get_name() + " has no attribute `" + name + "`")
        setattr(parent, name, module)

    def _member_at(self, target: str):
        """(owner module, name) of the attribute at the dotted path ``target``, which exists."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(module._get_name() + " has no attribute `" + name + "`")
        return module, name

    def get_parameter(self, target: str):
        """The parameter at the dotted path ``target``, as torch."""
        module, name = self._member_at(target)
        param = getattr(module, name)
        if not isinstance(param, Parameter):
            raise AttributeError("`" + name + "` is not an nn.Parameter")
        return param

    def get_buffer(self, target: str):
        """The buffer at the dotted path ``target``, as torch."""
        module, name = self._member_at(target)
        if name not in module._buffers:
            raise AttributeError("`" + name + "` is not a buffer")
        return getattr(module, name)

    def requires_grad_(self, requires_grad: bool = True):
        """Sets every parameter's ``requires_grad`` flag (kept for torch code; tensorops
        does not train); returns self."""
        check_bool(requires_grad, "requires_grad_", "requires_grad")
        for param in self.parameters():
            param.requires_grad = requires_grad
        return self

    # ---- modes and dtypes -----------------------------------------------------------------

    def train(self, mode: bool = True):
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def to(self, *args, **kwargs):
        """Converts every floating parameter and buffer to a dtype (float32 or float64, as a
        NumPy or a torch dtype, or a NumPy dtype's name), torch's ``to(dtype)``, ``to(device)``,
        ``to(device, dtype)`` and keyword forms; the device must be the CPU (or None), where
        everything already is.

        Integer buffers keep their dtype, as in torch. ``to(tensor)`` takes a tensor's (or an
        array's) dtype; ``memory_format`` changes nothing here (the values are the same in any
        layout). Arrays shared between modules stay shared. The converted arrays are new arrays (NumPy cannot change an array's dtype in
        place): references taken before the call keep the old ones. Returns self.
        """
        unknown = set(kwargs) - {"device", "dtype", "non_blocking", "memory_format"}
        memory_format = kwargs.get("memory_format")
        if unknown or len(args) > 2 or not (memory_format is None or type(memory_format).__name__ == "memory_format"):
            raise TypeError(f"nn.Module.to() received an invalid combination of arguments: {args!r}, {kwargs!r}")
        dtype, device = kwargs.get("dtype"), kwargs.get("device")
        for value in args:
            # A string names a device to torch; here a NumPy dtype's name ("float64") is a dtype.
            if value is None or type(value).__name__ == "device" or (isinstance(value, str) and not _dtype_name(value)):
                device = value
            elif not isinstance(value, type) and hasattr(value, "dtype") and hasattr(value, "shape"):  # to(tensor)
                dtype, device = value.dtype, getattr(value, "device", device)
            else:
                dtype = value
        module_device(device, "nn.Module.to")
        if dtype is None:
            return self
        try:
            target = numpy_dtype(dtype)
        except TypeError:
            target = None
        if target is None:
            raise TypeError(f"nn.Module.to: expected a float32 or float64 dtype, got {dtype!r}")
        if target not in FLOAT_DTYPES:
            raise TypeError(f"nn.Module.to only accepts float32 or float64 dtypes, but got desired dtype={target}")
        converted = {}
        for module in self.modules():
            changed = False
            for registry in (module._parameters, module._buffers):
                for name, array in registry.items():
                    if array is None or array.dtype.kind != "f" or array.dtype == target:
                        continue
                    if id(array) not in converted:
                        converted[id(array)] = array.astype(target)  # a Parameter stays a Parameter
                    registry[name] = converted[id(array)]
                    changed = True
            if changed:
                module._weights_changed()
        return self

    def cpu(self):
        """Returns self: every array already lives in host memory (torch's ``Module.cpu``)."""
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    # ---- state_dict -----------------------------------------------------------------------

    def _save_to_state_dict(self, destination, prefix: str, keep_vars: bool = False) -> None:
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else _plain(param)
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buf if keep_vars else _plain(buf)
        if type(self).get_extra_state is not Module.get_extra_state:
            destination[prefix + _EXTRA_STATE] = self.get_extra_state()

    def get_extra_state(self):
        """State beyond parameters and buffers, as torch: a subclass that overrides this and
        ``set_extra_state`` gets an ``_extra_state`` entry in its state_dict."""
        raise RuntimeError("Module.get_extra_state() is only called on modules that override it")

    def set_extra_state(self, state) -> None:
        """Takes back what ``get_extra_state`` returned, from a loaded state_dict."""
        raise RuntimeError("Module.set_extra_state() is only called on modules that override it")

    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """An OrderedDict of parameters and persistent buffers under torch's key names.

        The values are views of the module's own arrays (as torch returns detached
        tensors sharing storage): copy them before modifying. ``keep_vars=True`` gives the
        ``Parameter`` objects themselves.
        """
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        metadata = getattr(destination, "_metadata", None)
        if metadata is not None:
            metadata[prefix[:-1]] = {"version": self._version}
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        return destination

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        """Copies this module's own entries of ``state_dict`` (torch's signature, for overriding);
        with ``local_metadata["assign_to_params_buffers"]`` the module takes the checkpoint's
        arrays themselves instead."""
        assign = bool(local_metadata.get("assign_to_params_buffers", False))
        local_state = {name: param for name, param in self._parameters.items() if param is not None}
        local_state.update((name, buf) for name, buf in self._buffers.items()
                           if buf is not None and name not in self._non_persistent_buffers_set)
        for name, array in local_state.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            source = state_dict[key]
            try:
                if not (hasattr(source, "__array__") or hasattr(source, "__dlpack__")):
                    raise TypeError  # a list or a number is no array, as torch refuses it
                value = _checkpoint_array(source, key)
            except TypeError:
                error_msgs.append(f'While copying the parameter named "{key}", expected a numpy.ndarray or '
                                  f"torch.Tensor from checkpoint but received {type(source)}")
                continue
            if array.ndim == 0 and value.shape == (1,):
                value = value[0]  # torch accepts a one-element vector for a scalar (old checkpoints)
            if value.shape != array.shape:
                error_msgs.append(f"size mismatch for {key}: copying a param with shape {_torch_size(value.shape)} "
                                  f"from checkpoint, the shape in current model is {_torch_size(array.shape)}.")
                continue
            if assign:
                value = value.reshape(array.shape)  # (a one-element vector for a scalar, as above)
                if name in self._parameters:
                    self._parameters[name] = Parameter(value, requires_grad=array.requires_grad)
                else:
                    self._buffers[name] = value
                continue
            try:
                np.copyto(array, value, casting="unsafe")
            except Exception as exc:  # noqa: BLE001 - reported with the others, as torch does
                error_msgs.append(f'While copying the parameter named "{key}", whose dimensions in the model are '
                                  f"{_torch_size(array.shape)} and whose dimensions in the checkpoint are "
                                  f"{_torch_size(value.shape)}, an exception occurred : {exc.args}.")
        extra = type(self).set_extra_state is not Module.set_extra_state
        if extra:
            if prefix + _EXTRA_STATE in state_dict:
                self.set_extra_state(state_dict[prefix + _EXTRA_STATE])
            elif strict:
                missing_keys.append(prefix + _EXTRA_STATE)
        if strict:
            for key in state_dict:
                if not key.startswith(prefix):
                    continue
                head, *rest = key[len(prefix):].split(".", 1)
                expected = head in local_state or (extra and head == _EXTRA_STATE)
                if (rest and head not in self._modules) or (not rest and not expected):
                    unexpected_keys.append(key)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copies ``state_dict`` (arrays or torch tensors, torch's key names) into this
        module's own arrays, keeping their dtypes; with ``assign=True`` the module takes the
        checkpoint's arrays themselves (a torch tensor's memory, shared), as torch does.

        Size mismatches always raise ``ShapeError``; missing and unexpected keys raise
        only when ``strict``. Returns ``(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing_keys: list = []
        unexpected_keys: list = []
        error_msgs: list = []
        metadata = getattr(state_dict, "_metadata", None)

        def load(module, local_state_dict, prefix):
            local_metadata = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
            if assign:
                local_metadata["assign_to_params_buffers"] = True
            module._load_from_state_dict(local_state_dict, prefix, local_metadata, True, missing_keys,
                                         unexpected_keys, error_msgs)
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    load(child, {k: v for k, v in local_state_dict.items() if k.startswith(child_prefix)}, child_prefix)
            module._weights_changed()

        global _in_place_loads
        _in_place_loads += 1
        load(self, dict(state_dict), "")
        if strict:
            if unexpected_keys:
                error_msgs.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected_keys)))
            if missing_keys:
                error_msgs.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing_keys)))
        if error_msgs:
            raise ShapeError("Error(s) in loading state_dict for {}:\n\t{}".format(
                type(self).__name__, "\n\t".join(error_msgs)))
        return _IncompatibleKeys(missing_keys, unexpected_keys)

    # ---- repr -----------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The text inside this module's parentheses; layers override it."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _add_indent(repr(module), 2) for name, module in self._modules.items()]
        lines = extra_lines + child_lines
        text = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                text += extra_lines[0]
            else:
                text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"
