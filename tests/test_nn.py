"""tensorops.nn modules against torch.nn: registration, traversal order, state_dict keys and
loading (values and error text), modes, dtypes, containers, reprs, and every activation."""
from __future__ import annotations

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

import tensorops
import tensorops.nn as nn
from reference import DTYPES, assert_close, is_torch_message, layouts, randn, special_values, to_numpy

single = pytest.mark.single_isa  # the Module machinery runs no kernel


# ---- twin models: the same definition built once with torch.nn and once with tensorops.nn ----

class TorchArrays:
    nn = torch.nn

    @staticmethod
    def param(*shape):
        return torch.nn.Parameter(torch.randn(*shape))

    @staticmethod
    def array(*shape):
        return torch.randn(*shape)

    @staticmethod
    def counter():
        return torch.zeros((), dtype=torch.int64)


class TopsArrays:
    nn = nn

    @staticmethod
    def param(*shape):
        return nn.Parameter(np.zeros(shape, np.float32))

    @staticmethod
    def array(*shape):
        return np.zeros(shape, np.float32)

    @staticmethod
    def counter():
        return np.zeros((), np.int64)


def make_block(lib, n):
    class Block(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = lib.param(n)
            self.register_buffer("running", lib.array(n))
            self.register_buffer("scratch", lib.array(n), persistent=False)
            self.register_parameter("unused", None)
            self.act = lib.nn.PReLU(n)
            self.shift = lib.param(n)

    return Block()


def make_net(lib):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = lib.nn.Sequential(make_block(lib, 3), lib.nn.ReLU(), lib.nn.Flatten(), make_block(lib, 3))
            self.heads = lib.nn.ModuleList([make_block(lib, 2), lib.nn.Identity(), lib.nn.Sequential()])
            self.named = lib.nn.ModuleDict({"b": make_block(lib, 4), "act": lib.nn.GELU()})
            self.shared = self.features[0]
            self.register_buffer("steps", lib.counter())
            self.weight = lib.param(2, 5)

    return Net()


def names(pairs):
    return [name for name, _ in pairs]


@single
def test_registration_order_and_names_match_torch(isa):
    ours, theirs = make_net(TopsArrays), make_net(TorchArrays)
    assert names(ours.named_parameters()) == names(theirs.named_parameters())
    assert names(ours.named_buffers()) == names(theirs.named_buffers())
    assert names(ours.named_modules()) == names(theirs.named_modules())
    assert names(ours.named_children()) == names(theirs.named_children())
    assert names(ours.named_modules(remove_duplicate=False)) == names(theirs.named_modules(remove_duplicate=False))
    assert (names(ours.named_parameters(remove_duplicate=False))
            == names(theirs.named_parameters(remove_duplicate=False)))
    assert names(ours.named_parameters(prefix="net")) == names(theirs.named_parameters(prefix="net"))
    assert names(ours.named_parameters(recurse=False)) == names(theirs.named_parameters(recurse=False)) == ["weight"]
    assert names(ours.named_buffers(recurse=False)) == ["steps"]
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    assert len(list(ours.buffers())) == len(list(theirs.buffers()))
    assert [type(m).__name__ for m in ours.modules()] == [type(m).__name__ for m in theirs.modules()]
    assert [type(m).__name__ for m in ours.children()] == [type(m).__name__ for m in theirs.children()]
    assert all(type(p) is nn.Parameter for p in ours.parameters())


@single
def test_state_dict_keys_values_and_metadata_match_torch(isa):
    ours, theirs = make_net(TopsArrays), make_net(TorchArrays)
    theirs_sd = theirs.state_dict()
    assert list(ours.state_dict()) == list(theirs_sd)
    assert "features.0.scratch" not in ours.state_dict()
    assert list(ours.state_dict()._metadata) == list(theirs_sd._metadata)
    result = ours.load_state_dict(theirs_sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    for key, value in ours.state_dict().items():
        assert type(value) is np.ndarray
        assert_close(value, theirs_sd[key], rtol=0, atol=0)
    assert ours.steps.dtype == np.int64 and ours.features[0].scale.dtype == np.float32
    # Non-persistent buffers are not part of the exchange.
    assert not ours.features[0].scratch.any()


@single
def test_state_dict_values_are_views_of_the_module_arrays(isa):
    block = make_block(TopsArrays, 3)
    sd = block.state_dict()
    assert np.shares_memory(sd["scale"], block.scale)
    assert list(sd) == ["scale", "shift", "running", "act.weight"]
    prefixed = block.state_dict(prefix="enc.")
    assert list(prefixed) == ["enc.scale", "enc.shift", "enc.running", "enc.act.weight"]


@pytest.mark.parametrize("dtype", DTYPES)
@single
def test_load_copies_into_own_arrays_keeping_dtype(isa, dtype):
    ours = make_net(TopsArrays).to(dtype)
    before = {name: p for name, p in ours.named_parameters()}
    theirs = make_net(TorchArrays)
    theirs.weight.requires_grad_(True)
    ours.load_state_dict(theirs.state_dict(keep_vars=True))  # Parameters that require grad
    for name, p in ours.named_parameters():
        assert p is before[name] and p.dtype == dtype
    assert_close(ours.weight, theirs.weight.detach().numpy().astype(dtype), rtol=0, atol=0)
    # Loading from NumPy arrays copies: the source stays independent of the module.
    source = {k: v.copy() for k, v in ours.state_dict().items()}
    source["weight"] = np.full((2, 5), 7.0)
    ours.load_state_dict(source)
    source["weight"][...] = 0
    assert (ours.weight == 7).all() and ours.weight.dtype == dtype


class Linear(nn.Module):
    """Mirrors torch.nn.Linear's registrations, so load_state_dict's messages can be compared."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(np.zeros((out_features, in_features), np.float32))
        self.bias = nn.Parameter(np.zeros(out_features, np.float32))


def torch_error(module, state_dict, strict=True):
    with pytest.raises(RuntimeError) as info:
        module.load_state_dict(state_dict, strict=strict)
    return str(info.value)


LOAD_CASES = {
    "missing": {"weight": (3, 4)},
    "unexpected": {"weight": (3, 4), "bias": (3,), "foo": (1,), "x.y": (2,)},
    "size": {"weight": (4, 4), "bias": (3,)},
    "missing_and_size": {"weight": (4, 4)},
    "everything": {"weight": (3, 5), "extra": (1,)},
}


@pytest.mark.parametrize("case", list(LOAD_CASES))
@single
def test_load_state_dict_errors_match_torch(isa, case):
    shapes = LOAD_CASES[case]
    state = {k: torch.zeros(s) for k, s in shapes.items()}
    expected = torch_error(torch.nn.Linear(4, 3), state)
    ours = Linear(4, 3)
    with pytest.raises(tensorops.ShapeError) as info:
        ours.load_state_dict(state)
    assert str(info.value) == expected
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, ValueError)
    # NumPy arrays give the same text.
    with pytest.raises(tensorops.ShapeError) as info:
        ours.load_state_dict({k: np.zeros(s) for k, s in shapes.items()})
    assert str(info.value) == expected


@pytest.mark.parametrize("case", ["missing", "unexpected"])
@single
def test_load_state_dict_non_strict_reports_keys_like_torch(isa, case):
    state = {k: torch.ones(s) for k, s in LOAD_CASES[case].items()}
    expected = torch.nn.Linear(4, 3).load_state_dict(state, strict=False)
    ours = Linear(4, 3)
    result = ours.load_state_dict(state, strict=False)
    assert result == (expected.missing_keys, expected.unexpected_keys)
    assert (result.missing_keys, result.unexpected_keys) == (expected.missing_keys, expected.unexpected_keys)
    assert repr(result) == repr(expected)
    assert (ours.weight == 1).all()


@single
def test_load_state_dict_non_strict_still_raises_on_size_mismatch(isa):
    state = {"weight": torch.zeros(4, 4), "bias": torch.ones(3)}
    expected = torch_error(torch.nn.Linear(4, 3), state, strict=False)
    ours = Linear(4, 3)
    with pytest.raises(tensorops.ShapeError) as info:
        ours.load_state_dict(state, strict=False)
    assert str(info.value) == expected
    assert (ours.bias == 1).all()  # the keys that fit are loaded, as torch does


@single
def test_load_state_dict_nested_errors_match_torch(isa):
    def net(lib):
        return lib.nn.Sequential(lib.nn.Sequential(lib.nn.ReLU(), lib.nn.PReLU(3)), lib.nn.PReLU())

    state = {"0.1.weight": torch.zeros(3), "2.weight": torch.zeros(1), "0.0.weight": torch.zeros(1),
             "1.weight": torch.zeros(2)}
    expected = torch_error(net(TorchArrays), state)
    with pytest.raises(tensorops.ShapeError) as info:
        net(TopsArrays).load_state_dict(state)
    assert str(info.value) == expected
    assert 'Missing key(s) in state_dict: "1.weight"' not in expected


@single
def test_load_state_dict_rejects_bad_inputs(isa):
    ours = Linear(4, 3)
    with pytest.raises(TypeError, match=r"Expected state_dict to be dict-like, got <class 'list'>\."):
        ours.load_state_dict([("weight", np.zeros((3, 4)))])
    with pytest.raises(tensorops.ShapeError,
                       match=r'While copying the parameter named "weight", expected a numpy.ndarray or torch.Tensor '
                             r"from checkpoint but received <class 'object'>"):
        ours.load_state_dict({"weight": object(), "bias": np.zeros(3)})
    frozen = Linear(4, 3)
    frozen.bias = np.zeros(3, np.float32)
    frozen.bias.flags.writeable = False
    with pytest.raises(tensorops.ShapeError,
                       match=r'While copying the parameter named "bias", whose dimensions in the model are '
                             r"torch.Size\(\[3\]\) and whose dimensions in the checkpoint are torch.Size\(\[3\]\), "
                             r"an exception occurred"):
        frozen.load_state_dict({"weight": np.zeros((3, 4)), "bias": np.ones(3)})


@single
def test_load_state_dict_accepts_one_element_vector_for_a_scalar(isa):
    holder = nn.Module()
    holder.register_buffer("count", np.zeros((), np.int64))
    holder.load_state_dict({"count": torch.tensor([5])})
    assert holder.count.shape == () and holder.count == 5


@single
def test_none_members_are_skipped_in_traversal_and_loading(isa):
    block = make_block(TopsArrays, 2)
    block.register_buffer("nothing", None)
    block.add_module("missing_child", None)
    assert "unused" not in names(block.named_parameters())
    assert "nothing" not in names(block.named_buffers())
    assert "missing_child" not in names(block.named_children())
    with pytest.raises(tensorops.ShapeError, match=r'Unexpected key\(s\) in state_dict: "unused"'):
        block.load_state_dict({**block.state_dict(), "unused": np.zeros(2)})


# ---- train / eval ----

@single
def test_train_eval_propagate_and_return_self(isa):
    net = make_net(TopsArrays)
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    assert net.features.train() is net.features
    assert net.features[1].training and not net.heads[0].training and not net.training
    assert net.train(True) is net and all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        net.train("yes")


# ---- the weights-changed hook ----

class Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(np.ones((2, 2), np.float32))
        self.register_buffer("stat", np.zeros(2, np.float32))
        self.changes = 0

    def _weights_changed(self):
        self.__dict__["changes"] = self.__dict__.get("changes", 0) + 1


@single
def test_weights_changed_runs_on_every_replacement(isa):
    m = Counting()
    assert m.changes == 0
    m.weight = nn.Parameter(np.zeros((2, 2), np.float32))
    assert m.changes == 1
    replacement = np.full((3, 2), 2.0)
    m.weight = replacement  # a plain array replaces the parameter, viewing it
    assert m.changes == 2
    assert type(m.weight) is nn.Parameter and m.weight.shape == (3, 2) and np.shares_memory(m.weight, replacement)
    assert names(m.named_parameters()) == ["weight"]
    m.stat = np.ones(2, np.float32)
    assert m.changes == 3
    m.load_state_dict({"weight": np.ones((3, 2)), "stat": np.ones(2)})
    assert m.changes == 4
    m.double()
    assert m.changes == 5 and m.weight.dtype == np.float64 and m.stat.dtype == np.float64
    m.double()
    assert m.changes == 5  # nothing converted, nothing to invalidate
    weight = m.weight
    m.weight *= 2  # augmented assignment goes through __setattr__ with the same parameter
    assert m.changes == 6 and m.weight is weight and (m.weight == 2).all()
    m.weight = None
    assert m.changes == 7 and m.weight is None and "weight" in m._parameters
    del m.stat
    assert m.changes == 8 and "stat" not in m._buffers


@single
def test_weights_changed_reaches_children_on_load(isa):
    outer = nn.Sequential(Counting(), nn.ReLU(), nn.Sequential(Counting()))
    outer.load_state_dict(outer.state_dict())
    assert outer[0].changes == 1 and outer[2][0].changes == 1


@single
def test_assigning_wrong_types_to_registered_names(isa):
    m = Counting()
    with pytest.raises(TypeError, match=r"cannot assign 'int' as parameter 'weight' \(tensorops.nn.Parameter, "
                                        r"numpy.ndarray or None expected\)"):
        m.weight = 3
    with pytest.raises(TypeError, match=r"cannot assign 'list' as buffer 'stat' \(numpy.ndarray or None expected\)"):
        m.stat = [1.0, 2.0]
    m.child = nn.ReLU()
    with pytest.raises(TypeError, match=r"cannot assign 'int' as child module 'child' \(tensorops.nn.Module or None "
                                        r"expected\)"):
        m.child = 3
    m.child = None
    assert m.child is None and "child" in m._modules


# ---- attribute routing ----

@single
def test_attribute_routing_matches_torch(isa):
    def script(lib):
        m = lib.nn.Module()
        m.a = lib.param(2)
        m.register_buffer("b", lib.array(2))
        m.c = lib.nn.ReLU()
        m.register_buffer("d", lib.array(1))
        m.d = lib.nn.Tanh()  # a module replaces the buffer of that name
        m.c = lib.param(3)  # a parameter replaces the module
        m.plain = 5
        m.plain = lib.param(1)  # and a plain attribute
        m.b = None
        del m.c
        return (names(m.named_parameters()), names(m.named_buffers(remove_duplicate=False)),
                names(m.named_children()), sorted(m._buffers), "plain" in m.__dict__)

    assert script(TopsArrays) == script(TorchArrays)


@single
def test_getattr_and_delattr(isa):
    m = make_block(TopsArrays, 2)
    assert m.scale is m._parameters["scale"] and m.running is m._buffers["running"] and m.act is m._modules["act"]
    with pytest.raises(AttributeError, match=r"^'Block' object has no attribute 'nope'$"):
        m.nope
    del m.act
    with pytest.raises(AttributeError, match="has no attribute 'act'"):
        m.act
    m.note = "x"
    del m.note
    assert not hasattr(m, "note")
    with pytest.raises(AttributeError):
        del m.never_set
    assert {"scale", "running", "shift"} <= set(dir(m))


@single
def test_registration_errors_match_torch(isa):
    def attempts(lib):
        m = lib.nn.ReLU()
        cases = [
            lambda: m.register_parameter("a.b", None), lambda: m.register_parameter("", None),
            lambda: m.register_parameter(3, None), lambda: m.register_parameter("training", None),
            lambda: m.register_buffer("a.b", None), lambda: m.register_buffer("", None),
            lambda: m.register_buffer(3, None), lambda: m.register_buffer("forward", None),
            lambda: m.add_module("a.b", lib.nn.ReLU()), lambda: m.add_module("", lib.nn.ReLU()),
            lambda: m.add_module("x", 3), lambda: m.add_module(3, lib.nn.ReLU()),
            lambda: m.add_module("forward", lib.nn.ReLU()), lambda: lib.nn.Module()(3),
        ]
        outcomes = []
        for case in cases:
            with pytest.raises(Exception) as info:
                case()
            outcomes.append((type(info.value).__name__, str(info.value)))
        return outcomes

    assert attempts(TopsArrays) == attempts(TorchArrays)


@single
def test_registration_type_errors(isa):
    m = nn.Module()
    with pytest.raises(TypeError, match=r"cannot assign 'numpy.ndarray' object to parameter 'w' "
                                        r"\(tensorops.nn.Parameter or None required\)"):
        m.register_parameter("w", np.zeros(2))
    with pytest.raises(TypeError,
                       match=r"cannot assign 'list' object to buffer 'b' \(numpy.ndarray or None required\)"):
        m.register_buffer("b", [1.0])


@single
def test_assignment_before_init_matches_torch(isa):
    def attempts(lib):
        outcomes = []
        for assign in (lambda s: setattr(s, "w", lib.param(1)), lambda s: setattr(s, "m", lib.nn.ReLU()),
                       lambda s: s.register_buffer("b", None), lambda s: s.register_parameter("p", None)):
            class Forgetful(lib.nn.Module):
                def __init__(self):
                    assign(self)

            with pytest.raises(AttributeError) as info:
                Forgetful()
            outcomes.append(str(info.value))
        return outcomes

    assert attempts(TopsArrays) == attempts(TorchArrays)


@single
def test_shared_parameters_are_listed_once(isa):
    a, b = nn.PReLU(2), nn.PReLU(2)
    b.weight = a.weight
    seq = nn.Sequential(a, b)
    assert names(seq.named_parameters()) == ["0.weight"]
    assert names(seq.named_parameters(remove_duplicate=False)) == ["0.weight", "1.weight"]
    assert list(seq.state_dict()) == ["0.weight", "1.weight"]


@single
def test_apply_visits_children_first_like_torch(isa):
    def order(lib):
        visited = []
        net = make_net(lib)
        assert net.apply(lambda m: visited.append(type(m).__name__)) is net
        return visited

    assert order(TopsArrays) == order(TorchArrays)


# ---- dtype conversion ----

@single
def test_to_dtype_converts_float_arrays_and_keeps_sharing(isa):
    net = make_net(TopsArrays)
    net.heads[0].act.weight = net.named["b"].act.weight[:2].copy()
    shared_param = net.features[3].scale
    net.heads[0].scale = shared_param
    assert net.double() is net
    for p in net.parameters():
        assert type(p) is nn.Parameter and p.dtype == np.float64
    for name, buf in net.named_buffers():
        assert buf.dtype == (np.int64 if name == "steps" else np.float64)
    assert net.heads[0].scale is net.features[3].scale
    assert net.shared is net.features[0]
    assert net.features[0].scratch.dtype == np.float64  # non-persistent buffers convert too
    assert net.float() is net and all(p.dtype == np.float32 for p in net.parameters())
    before = net.weight
    assert net.to(np.float32) is net and net.weight is before
    assert net.to("float64").weight.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.int32, np.float16, "int64", "not a dtype", torch.int64])
@single
def test_to_rejects_other_dtypes(isa, dtype):
    with pytest.raises(TypeError, match=r"nn.Module.to"):
        nn.PReLU().to(dtype)


@single
def test_to_takes_torchs_device_and_dtype_forms(isa):
    """to(None), to("cpu"), to(torch.device("cpu")) change nothing; torch dtypes, the device
    and dtype together and the keyword forms convert; another device is refused."""
    module = nn.Linear(3, 2)
    weight = module.weight
    for args in ((None,), ("cpu",), (torch.device("cpu"),)):
        assert module.to(*args) is module and module.weight is weight
    assert module.to(torch.float64).weight.dtype == np.float64
    assert module.to("cpu", torch.float32).weight.dtype == np.float32
    assert module.to(device="cpu", dtype=np.float64).weight.dtype == np.float64
    with pytest.raises(TypeError, match="tensorops computes on the CPU, got device 'cuda'"):
        module.to("cuda")
    assert module.to(memory_format=None) is module  # as torch; a torch.memory_format too
    with pytest.raises(TypeError, match="invalid combination of arguments"):
        module.to(memory_format=3)
    with pytest.raises(TypeError, match="invalid combination of arguments"):
        module.to(layout=None)


# ---- Parameter ----

@single
def test_parameter_views_its_data_and_derived_arrays_are_plain(isa):
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    p = nn.Parameter(data)
    assert np.shares_memory(p, data) and p.requires_grad
    assert type(p * 2) is np.ndarray and type(p[0]) is np.ndarray and type(np.exp(p)) is np.ndarray
    assert type(p.sum()) is np.float32 and p.sum() == 15
    assert repr(p).startswith("Parameter containing:\narray([[0., 1., 2.]")
    frozen = nn.Parameter(torch.ones(3), requires_grad=False)
    assert not frozen.requires_grad and frozen.dtype == np.float32
    restored = pickle.loads(pickle.dumps(frozen))
    assert type(restored) is nn.Parameter and not restored.requires_grad and (restored == 1).all()
    assert nn.Parameter().shape == (0,)
    alias = p
    p += 1  # in-place arithmetic keeps the parameter itself
    assert p is alias and type(p) is nn.Parameter and p[0, 0] == 1 and data[0, 0] == 1


@single
def test_modules_deepcopy_and_pickle(isa):
    net = make_net(TopsArrays)
    net.weight[...] = 3
    clone = copy.deepcopy(net)
    assert list(clone.state_dict()) == list(net.state_dict())
    assert clone.weight is not net.weight and type(clone.weight) is nn.Parameter and (clone.weight == 3).all()
    assert clone.shared is clone.features[0]
    revived = pickle.loads(pickle.dumps(PReLUNet()))
    assert type(revived.act.weight) is nn.Parameter and names(revived.named_parameters()) == ["act.weight"]


@single
def test_packed_layers_deepcopy_and_pickle_after_a_forward(isa):
    # The packed weight and the kept call plan are derived caches of compiled objects: copies
    # leave them out, pack their own and never share them with the original.
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    net = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ConvTranspose2d(32, 4, 2, stride=2), nn.Flatten(),
                        nn.Linear(4 * 12 * 12, 5))
    want = net(x)
    net(x)
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        np.testing.assert_array_equal(clone(x), want)
        clone[0].weight[...] = 0
        clone[0].reset_packed_weight()
        assert not np.array_equal(clone(x), want)
        np.testing.assert_array_equal(net(x), want)


class PReLUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = nn.PReLU(3)


# ---- containers ----

def seq_signature(seq):
    return repr(seq), list(seq._modules), type(seq).__name__


@single
def test_sequential_operations_match_torch(isa):
    def script(lib):
        n = lib.nn
        seq = n.Sequential(n.ReLU(), n.Tanh(), n.Sigmoid(), n.GELU())
        out = [seq_signature(seq), type(seq[-1]).__name__, type(seq[1]).__name__,
               seq_signature(seq[1:3]), seq_signature(seq[::-2]), len(seq)]
        seq[-2] = n.SiLU()
        del seq[1]
        out.append(seq_signature(seq))
        del seq[0:2]
        out.append(seq_signature(seq))
        seq.append(n.ReLU6()).extend([n.Mish(), n.Softsign()]).insert(1, n.ELU()).insert(-1, n.SELU())
        out.append(seq_signature(seq))
        out.append(type(seq.pop(2)).__name__)
        out.append(seq_signature(seq + n.Sequential(n.Tanh())))
        out.append(seq_signature(n.Sequential(n.Tanh(), n.ReLU()) * 2))
        out.append(seq_signature(2 * n.Sequential(n.Tanh())))
        grown = n.Sequential(n.Tanh())
        grown += n.Sequential(n.ReLU())
        grown *= 2
        out.append(seq_signature(grown))
        out.append([type(m).__name__ for m in seq])
        named = n.Sequential(OrderedDict([("conv", n.ReLU()), ("act", n.Tanh()), ("out", n.Sigmoid())]))
        out.append(seq_signature(named))
        out.append(seq_signature(named[1:]))
        del named[0]
        out.append(seq_signature(named))
        out.append("0" in dir(named))
        return out

    assert script(TopsArrays) == script(TorchArrays)


@single
def test_sequential_errors_match_torch(isa):
    def attempts(lib):
        n = lib.nn
        seq = n.Sequential(n.ReLU())
        outcomes = []
        for case in (lambda: seq[3], lambda: seq[-2], lambda: seq.__setitem__(1, n.ReLU()),
                     lambda: seq.insert(5, n.ReLU()),
                     lambda: seq * 0, lambda: seq * 1.5, lambda: seq.__imul__(-1)):
            with pytest.raises(Exception) as info:
                case()
            text = str(info.value).replace("torch.nn.modules.container.", "").replace("tensorops.nn.container.", "")
            outcomes.append((type(info.value).__name__, text))
        return outcomes

    assert attempts(TopsArrays) == attempts(TorchArrays)
    seq = nn.Sequential(nn.ReLU())
    with pytest.raises(ValueError, match=r"add operator supports only objects of Sequential class, but "
                                         r"<class 'tensorops.nn.container.ModuleList'> is given\."):
        seq + nn.ModuleList()
    with pytest.raises(AssertionError, match=r"module should be of type: <class 'tensorops.nn.module.Module'>"):
        seq.insert(0, 3)


@single
def test_sequential_forward_chains(isa):
    class AddOne(nn.Module):
        def forward(self, x):
            return x + 1

    seq = nn.Sequential(AddOne(), nn.ReLU(), nn.Flatten(), AddOne(), nn.Identity())
    x = np.array([[[-3.0, 0.5]], [[1.0, -2.0]]], np.float32)
    assert_close(seq(x), np.array([[1.0, 2.5], [3.0, 1.0]], np.float32))
    assert nn.Sequential()(x) is x


@single
def test_module_list_operations_match_torch(isa):
    def script(lib):
        n = lib.nn
        ml = n.ModuleList([n.ReLU(), n.ReLU(), n.Tanh(), n.Sequential(n.ReLU(), n.PReLU()), n.ReLU(), n.ReLU(),
                           n.ReLU()])
        out = [seq_signature(ml), seq_signature(ml[1:4]), type(ml[-4]).__name__, len(ml)]
        ml[-1] = n.GELU()
        del ml[0]
        out.append(seq_signature(ml))
        del ml[::2]
        out.append(seq_signature(ml))
        ml.append(n.Tanh()).extend([n.SiLU(), n.SiLU()])
        ml.insert(1, n.ELU())
        ml += [n.Mish()]
        out.append(seq_signature(ml))
        out.append(type(ml.pop(-1)).__name__)
        out.append(seq_signature(ml + [n.ReLU()]))
        out.append(seq_signature(n.ModuleList()))
        out.append([type(m).__name__ for m in ml])
        return out

    assert script(TopsArrays) == script(TorchArrays)


@single
def test_module_list_errors_match_torch(isa):
    def attempts(lib):
        n = lib.nn
        outcomes = []
        for case in (lambda: n.ModuleList([n.ReLU()])[-2], lambda: n.ModuleList([n.ReLU()])[1], lambda: n.ModuleList(3),
                     lambda: n.ModuleList().__setitem__(0, n.ReLU()), lambda: n.ModuleList()(3)):
            with pytest.raises(Exception) as info:
                case()
            outcomes.append((type(info.value).__name__, str(info.value)))
        return outcomes

    assert attempts(TopsArrays) == attempts(TorchArrays)


@single
def test_module_dict_operations_match_torch(isa):
    def script(lib):
        n = lib.nn
        md = n.ModuleDict({"b": n.ReLU(), "a": n.Tanh()})
        md.update([("c", n.GELU()), ("a", n.SiLU())])
        md.update(OrderedDict([("d", n.PReLU(2))]))
        md.update(n.ModuleDict({"e": n.Identity()}))
        md["f"] = n.Softsign()
        out = [seq_signature(md), list(md), list(md.keys()), [type(m).__name__ for m in md.values()],
               [k for k, _ in md.items()], "a" in md, "z" in md, len(md), type(md["d"]).__name__,
               names(md.named_parameters())]
        out.append(type(md.pop("b")).__name__)
        del md["c"]
        out.append(seq_signature(md))
        md.clear()
        out.append(seq_signature(md))
        return out

    assert script(TopsArrays) == script(TorchArrays)


@single
def test_module_dict_errors_match_torch(isa):
    def attempts(lib):
        n = lib.nn
        outcomes = []
        for case in (lambda: n.ModuleDict(3), lambda: n.ModuleDict([3]), lambda: n.ModuleDict([("a", n.ReLU(), 1)]),
                     lambda: n.ModuleDict()["nope"], lambda: n.ModuleDict({"a.b": n.ReLU()}),
                     lambda: n.ModuleDict({"x": 3})):
            with pytest.raises(Exception) as info:
                case()
            outcomes.append((type(info.value).__name__, str(info.value)))
        return outcomes

    assert attempts(TopsArrays) == attempts(TorchArrays)


# ---- repr ----

def described_class(base):
    class Described(base):
        def __init__(self, lines):
            super().__init__()
            self.lines = lines

        def extra_repr(self):
            return "\n".join(self.lines)

    return Described


def activation_modules(lib):
    n = lib.nn
    return [
        n.ReLU(), n.ReLU(True), n.ReLU6(), n.ReLU6(inplace=True), n.LeakyReLU(), n.LeakyReLU(0.2, True),
        n.ELU(), n.ELU(0.5, True), n.SELU(), n.SELU(True), n.CELU(), n.CELU(2.0, True), n.GELU(),
        n.GELU(approximate="tanh"), n.SiLU(), n.SiLU(True), n.Mish(), n.Mish(True), n.Sigmoid(), n.Tanh(),
        n.Hardtanh(), n.Hardtanh(-2, 3, True), n.Hardsigmoid(), n.Hardsigmoid(True), n.Hardswish(),
        n.Hardswish(True), n.Softplus(), n.Softplus(2, 10), n.Softsign(), n.LogSigmoid(), n.PReLU(),
        n.PReLU(3, 0.1), n.Softmax(), n.Softmax(1), n.LogSoftmax(), n.LogSoftmax(dim=-1),
    ]


def shape_modules(lib):
    n = lib.nn
    return [n.Flatten(), n.Flatten(0, 2), n.Unflatten(1, (2, 3)), n.Unflatten(-1, [2, -1]), n.Identity(),
            n.Identity(3, key=4), n.Sequential(), n.ModuleList(), n.ModuleDict()]


@single
def test_repr_matches_torch_for_leaves(isa):
    assert ([repr(m) for m in activation_modules(TopsArrays) + shape_modules(TopsArrays)]
            == [repr(m) for m in activation_modules(TorchArrays) + shape_modules(TorchArrays)])


@single
def test_repr_matches_torch_for_nested_containers(isa):
    def build(lib, described):
        n = lib.nn
        inner = n.Sequential(n.ReLU(), described(["one line"]), n.ModuleList([n.Tanh(), n.Tanh(), n.PReLU(2)]))
        root = n.Sequential(OrderedDict([
            ("stem", inner),
            ("multi", described(["first", "", "third"])),
            ("list", n.ModuleList([inner, inner, n.GELU(), n.Sequential(n.ReLU()), n.Sequential(n.ReLU())])),
            ("dict", n.ModuleDict({"x": n.Softmax(1), "y": n.Flatten()})),
        ]))
        holder = described(["extra"])
        holder.body = root
        holder.add_module("nothing", None)
        return holder

    assert (repr(build(TopsArrays, described_class(nn.Module)))
            == repr(build(TorchArrays, described_class(torch.nn.Module))))
    assert repr(make_net(TopsArrays)) == repr(make_net(TorchArrays))


# ---- Flatten / Unflatten ----

FLATTEN_CASES = [((2, 3, 4), 1, -1), ((2, 3, 4), 0, -1), ((2, 3, 4), 0, 1), ((2, 3, 4), -2, -1), ((2, 3, 4), 1, 1),
                 ((5,), 0, 0), ((), 0, -1), ((), -1, 0), ((3, 0, 2), 1, 2), ((0, 4), 0, 1), ((2, 1, 3, 1), 1, 3)]


@pytest.mark.parametrize("shape,start,end", FLATTEN_CASES)
@single
def test_flatten_matches_torch(isa, shape, start, end):
    x = np.asarray(randn(shape))
    expected = torch.nn.Flatten(start, end)(torch.from_numpy(x))
    for _, arranged in layouts(x) if x.ndim else [("scalar", x)]:
        assert_close(nn.Flatten(start, end)(arranged), expected, rtol=0, atol=0)
    assert_close(nn.Flatten(start, end)(torch.from_numpy(x)), expected, rtol=0, atol=0)


@single
def test_flatten_keeps_dtype_and_views_when_possible(isa):
    x = np.arange(24, dtype=np.int64).reshape(2, 3, 4)
    y = nn.Flatten()(x)
    assert y.dtype == np.int64 and y.shape == (2, 12) and np.shares_memory(x, y)
    assert nn.Flatten(1, 1)(x) is x


@pytest.mark.parametrize("shape,start,end", [((2, 3, 4), 2, 1), ((), 1, -1), ((2, 3, 4), -5, -1), ((2, 3), 0, 2)])
@single
def test_flatten_errors_match_torch(isa, shape, start, end):
    with pytest.raises(Exception) as expected:
        torch.nn.Flatten(start, end)(torch.zeros(shape))
    with pytest.raises((IndexError, tensorops.ShapeError)) as info:
        nn.Flatten(start, end)(np.zeros(shape, np.float32))
    assert is_torch_message(info.value, expected.value), (str(info.value), str(expected.value))
    assert isinstance(info.value, type(expected.value))


UNFLATTEN_CASES = [((2, 6), 1, (2, 3)), ((2, 6), 1, (3, -1)), ((2, 6), -1, [-1, 2]), ((6, 2), 0, (1, 6, 1)),
                   ((2, 0), 1, (3, -1)), ((4,), 0, (2, 2)), ((2, 6, 3), 1, (6,))]


@pytest.mark.parametrize("shape,dim,sizes", UNFLATTEN_CASES)
@single
def test_unflatten_matches_torch(isa, shape, dim, sizes):
    x = randn(shape, np.float64)
    expected = torch.nn.Unflatten(dim, sizes)(torch.from_numpy(x))
    for _, arranged in layouts(x):
        assert_close(nn.Unflatten(dim, sizes)(arranged), expected, rtol=0, atol=0)


@pytest.mark.parametrize("shape,dim,sizes,message", [
    ((2, 6), 1, (2, 2), r"^unflatten: Provided sizes \[2, 2\] don't multiply up to the size of dim 1 \(6\) in the "
                        r"input tensor$"),
    ((2, 6), 1, (4, -1), r"Provided sizes \[4, -1\] don't multiply up to the size of dim 1 \(6\)"),
    ((2, 6), 1, (0, -1), r"Provided sizes \[0, -1\] don't multiply up"),
    ((2, 6), 1, (-1, -1), r"only one dimension can be inferred"),
    ((2, 6), 1, (-2, -3), r"invalid shape dimension -2 at index 0 of shape \[-2, -3\]"),
    ((2, 0), 1, (0, -1), r"cannot reshape tensor of 0 elements into shape \[0, -1\] because the unspecified "
                         r"dimension size -1 can be any value and is ambiguous"),
    ((2, 6), 1, (), r"^unflatten: sizes must be non-empty$"),
    ((), 0, (1,), r"Dimension specified as 0 but tensor has no dimensions"),
])
@single
def test_unflatten_errors_use_torch_wording(isa, shape, dim, sizes, message):
    with pytest.raises(RuntimeError, match=message):
        torch.nn.Unflatten(dim, sizes)(torch.zeros(shape))
    with pytest.raises(tensorops.ShapeError, match=message):
        nn.Unflatten(dim, sizes)(np.zeros(shape, np.float32))


@single
def test_unflatten_dim_out_of_range_and_constructor_errors_match_torch(isa):
    def attempts(lib):
        outcomes = []
        for case in (lambda: lib.nn.Unflatten(2, (2, 3))(lib.array(2, 6)), lambda: lib.nn.Unflatten(1, 3),
                     lambda: lib.nn.Unflatten(1, (2.0, 3))):
            with pytest.raises(Exception) as info:
                case()
            outcomes.append((type(info.value).__name__, str(info.value)))
        return outcomes

    for ours, theirs in zip(attempts(TopsArrays), attempts(TorchArrays), strict=True):
        assert ours[0] == theirs[0] and is_torch_message(ours[1], theirs[1]), (ours, theirs)
    with pytest.raises(TypeError, match="unflatten: dim must be an int, got float"):
        nn.Unflatten(1.5, (2, 3))(np.zeros((2, 6)))


# ---- activation modules against torch (values; they call tensorops.nn.functional) ----

def activation_pairs():
    ours, theirs = activation_modules(TopsArrays), activation_modules(TorchArrays)
    return [pytest.param(o, t, id=repr(t)) for o, t in zip(ours, theirs) if not getattr(t, "inplace", False)]


@pytest.mark.parametrize("ours,theirs", activation_pairs())
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_module_values_match_torch(isa, ours, theirs, dtype):
    x = randn((4, 3, 7), dtype, scale=3.0)
    if isinstance(theirs, torch.nn.PReLU):
        # Per-channel weights come across through the state_dict.
        theirs = torch.nn.PReLU(3) if theirs.num_parameters == 3 else theirs
        with torch.no_grad():
            theirs.weight.copy_(torch.linspace(-0.5, 0.5, theirs.num_parameters))
        ours = nn.PReLU(theirs.num_parameters).to(dtype)
        ours.load_state_dict(theirs.state_dict())
    if isinstance(theirs, torch.nn.Softmax | torch.nn.LogSoftmax) and theirs.dim is None:
        ours, theirs = type(ours)(1), type(theirs)(1)
    expected = theirs.to(getattr(torch, np.dtype(dtype).name))(torch.from_numpy(x))
    for _, arranged in layouts(x):
        original = arranged.copy()
        assert_close(ours(arranged), expected, dtype=dtype, rtol=1e-5 if dtype == np.float32 else 1e-10,
                     atol=1e-6 if dtype == np.float32 else 1e-12)
        np.testing.assert_array_equal(arranged, original)  # not in place unless asked


@pytest.mark.parametrize("name", ["ReLU", "Sigmoid", "Tanh", "GELU", "SiLU", "Softplus", "Hardswish", "LogSigmoid"])
def test_activation_modules_on_special_values(isa, name):
    for dtype in DTYPES:
        x = special_values(dtype)
        t = torch.from_numpy(x)
        if name == "GELU":
            # torch's vectorised float32 gelu gives NaN at +inf and overflows at float32's max;
            # tensorops returns the mathematical value, which is torch's float64 answer.
            expected = torch.nn.GELU()(t.double()).to(t.dtype)
        else:
            expected = getattr(torch.nn, name)()(t)
        assert_close(getattr(nn, name)()(x), expected, dtype=dtype, rtol=1e-5 if dtype == np.float32 else 1e-10,
                     atol=1e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("index", [i for i, m in enumerate(activation_modules(TorchArrays))
                                   if getattr(m, "inplace", False)])
def test_inplace_activation_modules_write_into_their_input(isa, index):
    ours, theirs = activation_modules(TopsArrays)[index], activation_modules(TorchArrays)[index]
    x = randn((3, 5), np.float32, seed=index, scale=4.0)
    expected = theirs(torch.from_numpy(x.copy()))
    result = ours(x)
    assert_close(x, expected)
    assert np.shares_memory(result, x)


@single
def test_activation_modules_accept_torch_tensors_and_have_no_state(isa):
    assert_close(nn.ReLU()(torch.tensor([-1.0, 2.0])), np.array([0.0, 2.0], np.float32))
    assert nn.ReLU().state_dict() == OrderedDict()
    assert list(nn.PReLU(4).state_dict()) == ["weight"]
    assert_close(nn.PReLU(4, 0.1).weight, np.full(4, 0.1, np.float32))
    assert nn.PReLU(2, dtype=np.float64).weight.dtype == np.float64
    with pytest.raises(TypeError, match="PReLU: unsupported dtype int32"):
        nn.PReLU(dtype=np.int32)
    with pytest.raises(tensorops.ShapeError, match=r"max_val \(0\) must be greater than min_val \(1\)"):
        nn.Hardtanh(1, 0)


@single
def test_prelu_state_dict_round_trip_with_torch(isa):
    theirs = torch.nn.PReLU(5)
    with torch.no_grad():
        theirs.weight.uniform_(-1, 1)
    ours = nn.PReLU(5)
    ours.load_state_dict(theirs.state_dict())
    assert_close(ours.weight, to_numpy(theirs.weight))
    back = torch.nn.PReLU(5)
    back.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    assert torch.equal(back.weight, theirs.weight)


# ---- constructors and checkpoints, as torch's ------------------------------------------------

CONSTRUCTORS = {
    "Linear": (lambda m, **kw: m.Linear(4, 3, **kw)),
    "Conv2d": (lambda m, **kw: m.Conv2d(3, 2, 3, **kw)),
    "ConvTranspose2d": (lambda m, **kw: m.ConvTranspose2d(3, 2, 3, **kw)),
    "BatchNorm2d": (lambda m, **kw: m.BatchNorm2d(3, **kw)),
    "InstanceNorm2d": (lambda m, **kw: m.InstanceNorm2d(3, affine=True, track_running_stats=True, **kw)),
    "LayerNorm": (lambda m, **kw: m.LayerNorm((2, 3), **kw)),
    "GroupNorm": (lambda m, **kw: m.GroupNorm(2, 4, **kw)),
    "Embedding": (lambda m, **kw: m.Embedding(5, 3, **kw)),
    "PReLU": (lambda m, **kw: m.PReLU(3, **kw)),
}


@pytest.mark.parametrize("name", CONSTRUCTORS)
def test_device_and_dtype_arguments(name):
    """Every module with parameters takes torch's device= (the CPU) and dtype= (a NumPy or a
    torch dtype) and gives its parameters and buffers that dtype."""
    make = CONSTRUCTORS[name]
    for device, dtype in ((None, None), ("cpu", torch.float64), (torch.device("cpu"), np.float64)):
        module = make(nn, device=device, dtype=dtype)
        want = make(torch.nn, device=device, dtype=torch.float64 if dtype is not None else None)
        for key, value in want.state_dict().items():
            assert module.state_dict()[key].dtype == to_numpy(value).dtype, key
    with pytest.raises(TypeError, match="tensorops computes on the CPU, got device 'cuda'"):
        make(nn, device="cuda")
    assert make(nn, device="cpu:0") is not None and make(nn, device=torch.device("cpu", 0)) is not None


def test_torch_positional_order_of_device_and_dtype():
    assert nn.Linear(4, 3, True, "cpu", torch.float64).weight.dtype == np.float64
    with pytest.raises(TypeError, match="where torch's argument order has the device; pass it as dtype="):
        nn.Linear(4, 3, True, np.float64)
    assert nn.BatchNorm2d(3, 1e-5, 0.1, True, True, "cpu", np.float64).running_mean.dtype == np.float64
    assert nn.GroupNorm(1, 4, 1e-5, True, "cpu", np.float64).weight.dtype == np.float64
    assert nn.LayerNorm(4, 1e-5, True, True, "cpu", np.float64).weight.dtype == np.float64
    assert nn.PReLU(1, 0.25, "cpu", np.float64).weight.dtype == np.float64


@pytest.mark.parametrize("make", [lambda m: m.Linear(3, -1), lambda m: m.Linear(-1, 3), lambda m: m.BatchNorm2d(-1),
                                  lambda m: m.LayerNorm(-3), lambda m: m.LayerNorm((2, -3)),
                                  lambda m: m.GroupNorm(1, -2), lambda m: m.Embedding(-1, 3),
                                  lambda m: m.Embedding(3, -1), lambda m: m.PReLU(-2)])
def test_negative_sizes_raise_torchs_error(make):
    with pytest.raises(RuntimeError) as theirs:
        make(torch.nn)
    with pytest.raises(tensorops.ShapeError) as ours:
        make(nn)
    assert str(ours.value) == str(theirs.value)


def test_load_state_dict_of_bfloat16_tensors():
    """torch loads a bfloat16 checkpoint into float32 parameters, casting; NumPy has no
    bfloat16, so the tensors are widened (exactly) first."""
    source = torch.nn.Linear(4, 3).bfloat16()
    for dtype in (np.float32, np.float64):
        module = nn.Linear(4, 3, dtype=dtype)
        module.load_state_dict(source.state_dict())
        np.testing.assert_array_equal(module.weight, source.weight.detach().float().numpy())
        np.testing.assert_array_equal(module.bias, source.bias.detach().float().numpy())


def test_old_checkpoints_keep_the_batch_count():
    """A checkpoint without num_batches_tracked (saved before it existed) leaves the module's
    own count, as torch does; a new module's is 0."""
    for make in (nn.BatchNorm2d, torch.nn.BatchNorm2d):
        module = make(2)
        module.train()
        x = np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32)
        module(x if make is nn.BatchNorm2d else torch.from_numpy(x))
        state = {k: to_numpy(v).copy() for k, v in module.state_dict().items() if k != "num_batches_tracked"}
        module.load_state_dict(state if make is nn.BatchNorm2d else {k: torch.from_numpy(v) for k, v in state.items()})
        assert int(module.num_batches_tracked) == 1


def test_instance_norm_refuses_legacy_running_stats():
    """Running statistics in a checkpoint without version, for an instance norm that does not
    track them, are an error in torch, strict or not."""
    state = {"running_mean": torch.zeros(2), "running_var": torch.ones(2)}
    for strict in (True, False):
        with pytest.raises(RuntimeError) as theirs:
            torch.nn.InstanceNorm2d(2).load_state_dict(state, strict=strict)
        with pytest.raises(tensorops.ShapeError) as ours:
            nn.InstanceNorm2d(2).load_state_dict(state, strict=strict)
        assert str(ours.value) == str(theirs.value)


def test_checkpoint_values_must_be_arrays_and_huge_modules_are_refused():
    with pytest.raises(tensorops.ShapeError, match='"weight", expected a numpy.ndarray or torch.Tensor from '
                                                   "checkpoint but received <class 'list'>"):
        nn.LayerNorm(2).load_state_dict({"weight": [1.0, 2.0], "bias": np.zeros(2, np.float32)})
    for make in (lambda: nn.Embedding(2**62, 4), lambda: nn.Linear(2**40, 2**40)):
        with pytest.raises(tensorops.ShapeError, match="cannot be allocated"):
            make()


def test_register_buffer_takes_a_torch_tensor():
    """A torch tensor becomes an array viewing its memory, as any input does."""
    module = nn.Module()
    t = torch.arange(4.0)
    module.register_buffer("steps", t)
    assert isinstance(module.steps, np.ndarray)
    t[0] = 7.0
    assert module.steps[0] == 7.0 and list(module.state_dict()) == ["steps"]
    with pytest.raises(TypeError, match="numpy.ndarray or None required"):
        module.register_buffer("bad", [1.0, 2.0])


def _mlp(lib):
    return lib.Sequential(lib.Linear(4, 3), lib.ReLU(), lib.Linear(3, 2))


def _hooked_outputs(model, x, wrap):
    """Runs every kind of forward hook on model and returns what each call gave."""
    seen, results = [], []
    inner = model[1].register_forward_hook(lambda module, args, output: seen.append(to_numpy(output).copy()))
    doubled = model[0].register_forward_pre_hook(lambda module, args: (args[0] * 2,))
    plus_one = model.register_forward_hook(lambda module, args, output: output + 1)
    first = model.register_forward_hook(lambda module, args, output: output * 10, prepend=True)
    results.append(model(wrap(x)))
    for handle in (inner, doubled, plus_one, first):
        handle.remove()
    plus_one.remove()  # removing twice is harmless
    results.append(model(wrap(x)))
    zeroed = model[0].register_forward_pre_hook(lambda module, args, kwargs: ((args[0] * 0,), kwargs),
                                                with_kwargs=True)
    results.append(model(wrap(x)))
    zeroed.remove()
    with model.register_forward_hook(lambda module, args, output: output * 0):
        pass
    results.append(model(wrap(x)))
    return [to_numpy(r) for r in results] + seen


@single
def test_forward_hooks_match_torch(isa):
    torch.set_grad_enabled(False)
    try:
        theirs = _mlp(torch.nn)
        ours = _mlp(nn)
        ours.load_state_dict(theirs.state_dict())
        x = randn((5, 4), np.float32)
        for got, want in zip(_hooked_outputs(ours, x, lambda a: a), _hooked_outputs(theirs, x, torch.from_numpy)):
            assert_close(got, want)
    finally:
        torch.set_grad_enabled(True)


@single
def test_forward_hooks_errors_and_always_call(isa):
    class Failing(nn.Module):
        def forward(self, x):
            raise ValueError("no")

    calls = []
    module = Failing()
    module.register_forward_hook(lambda m, args, output: calls.append(("plain", output)))
    module.register_forward_hook(lambda m, args, output: calls.append(("always", output)), always_call=True)
    with pytest.raises(ValueError, match="no"):
        module(1)
    assert calls == [("always", None)]
    bad = nn.Identity()
    bad.register_forward_pre_hook(lambda m, args, kwargs: "wrong", with_kwargs=True)
    with pytest.raises(RuntimeError, match=r"must return None or a tuple of \(new_args, new_kwargs\)"):
        bad(1)
    with pytest.raises(TypeError, match="hook must be callable"):
        nn.Identity().register_forward_hook(3)


@single
def test_submodule_lookup_keep_vars_and_flags_match_torch(isa):
    ours, theirs = _mlp(nn), _mlp(torch.nn)
    for model in (ours, theirs):
        assert model.get_submodule("") is model and model.get_submodule("2") is model[2]
        assert tuple(model.get_parameter("2.bias").shape) == (2,)
        assert model.cpu() is model and model.requires_grad_(False) is model
        assert not any(p.requires_grad for p in model.parameters())
        kept = model.state_dict(keep_vars=True)
        assert kept["0.weight"] is model[0].weight and list(kept) == list(model.state_dict())
    assert type(ours.state_dict()["0.weight"]) is np.ndarray
    bn = (nn.Sequential(nn.BatchNorm2d(3)), torch.nn.Sequential(torch.nn.BatchNorm2d(3)))
    assert bn[0].get_buffer("0.running_var").shape == tuple(bn[1].get_buffer("0.running_var").shape)
    for call in (lambda m: m.get_submodule("3"), lambda m: m.get_submodule("0.weight"),
                 lambda m: m.get_submodule("0.foo"), lambda m: m.get_parameter("0.foo"),
                 lambda m: m.get_buffer("0.weight"), lambda m: m.get_parameter("0")):
        with pytest.raises(AttributeError) as want:
            call(theirs)
        with pytest.raises(AttributeError) as got:
            call(ours)
        assert str(got.value) == str(want.value)


def test_packed_weights_follow_writes_in_place():
    """torch code rewrites weights in place (weight.copy_(w), fill_, nn.init): the packed copy
    a layer keeps must not outlive such a write, through the Parameter's index, np.copyto,
    or a torch tensor the Parameter shares."""
    x = randn((4, 64), np.float32, 1)
    linear = nn.Linear(64, 32)
    linear(x)
    linear.weight[...] = 0.01
    assert_close(linear(x), x @ linear.weight.T + linear.bias, atol=1e-4)
    linear.weight[5, 7] = 3.0  # one element, through the index
    assert_close(linear(x), x @ linear.weight.T + linear.bias, atol=1e-4)
    linear.weight.reshape(-1)[70] = -2.0  # through a Parameter view of it
    assert_close(linear(x), x @ linear.weight.T + linear.bias, atol=1e-4)
    np.copyto(linear.weight, np.float32(0.5))
    assert_close(linear(x), x @ linear.weight.T + linear.bias, atol=1e-4)
    shared = torch.randn(32, 64)
    linear.weight = nn.Parameter(shared)
    linear(x)
    shared.mul_(2)
    assert_close(linear(x), x @ shared.numpy().T + linear.bias, atol=1e-4)
    image = randn((1, 3, 8, 8), np.float32, 2)
    for layer, theirs in ((nn.Conv2d(3, 8, 3), torch.nn.Conv2d(3, 8, 3)),
                          (nn.ConvTranspose2d(3, 4, 2, stride=2), torch.nn.ConvTranspose2d(3, 4, 2, stride=2))):
        layer(image)
        np.copyto(layer.weight, np.float32(0.25))
        layer.weight[0, 0, 0, 0] = 5.0
        theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in layer.state_dict().items()})
        assert_close(layer(image), theirs(torch.from_numpy(image)).detach(), atol=1e-4)
    nan = nn.Linear(4, 2)
    nan.weight[...] = np.nan
    assert np.isnan(nan(randn((3, 4), np.float32, 3))).all()
    assert nan._kept_packing() is not None  # a NaN weight keeps its packing from call to call


def _always_call_outcomes(lib):
    """What always_call hooks see when forward, a pre-hook or an earlier hook raises."""
    import warnings
    seen = []

    class Failing(lib.Module):
        def forward(self, x):
            raise ValueError("boom")

    def failing_hook(module, args, output):
        raise KeyError("hook")

    def failing_pre_hook(module, args):
        raise RuntimeError("pre")

    failing = Failing()
    failing.register_forward_hook(lambda m, a, o: seen.append(("forward raised", o)), always_call=True)
    failing.register_forward_hook(failing_hook, always_call=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="boom"):
            failing(1)
    seen.append(("warnings", len(caught)))
    early = lib.Identity()
    early.register_forward_pre_hook(failing_pre_hook)
    early.register_forward_hook(lambda m, a, o: seen.append(("pre-hook raised", o)), always_call=True)
    with pytest.raises(RuntimeError, match="pre"):
        early(1)
    late = lib.Identity()
    late.register_forward_hook(failing_hook)
    late.register_forward_hook(lambda m, a, o: seen.append(("hook raised", o)), always_call=True)
    with pytest.raises(KeyError):
        late(5)
    return seen


class _ExtraState:
    def __init__(self):
        super().__init__()
        self.count = 3

    def get_extra_state(self):
        return {"count": self.count}

    def set_extra_state(self, state):
        self.count = state["count"]


@single
def test_always_call_hooks_and_extra_state_match_torch(isa):
    assert _always_call_outcomes(nn) == _always_call_outcomes(torch.nn)

    class Theirs(_ExtraState, torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)

    class Ours(_ExtraState, nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

    theirs, ours = Theirs(), Ours()
    theirs.count = 9
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert not ours.load_state_dict(theirs.state_dict()).missing_keys and ours.count == 9
    partial = theirs.state_dict()
    del partial["_extra_state"]
    assert ours.load_state_dict(partial, strict=False).missing_keys == ["_extra_state"]
    with pytest.raises(tensorops.ShapeError, match='Missing key\\(s\\) in state_dict: "_extra_state"'):
        ours.load_state_dict(partial)


@single
def test_load_with_assign_and_module_odds_and_ends(isa):
    layer = nn.Linear(3, 2)
    weight = torch.randn(2, 3)
    x = randn((4, 3), np.float32, 1)
    layer(x)
    layer.load_state_dict({"weight": weight, "bias": torch.zeros(2)}, assign=True)
    weight[0, 0] = 42.0  # the layer took the checkpoint's memory, as torch's assign does
    assert layer.weight[0, 0] == 42.0 and type(layer.weight) is nn.Parameter
    assert_close(layer(x), x @ weight.numpy().T, atol=1e-4)
    model = nn.Sequential(nn.Linear(3, 2))
    model.to(memory_format=torch.channels_last)
    model.to(torch.zeros(1, dtype=torch.float64))
    assert model[0].weight.dtype == np.float64
    model.set_submodule("0", nn.ReLU())
    assert isinstance(model[0], nn.ReLU)
    with pytest.raises(AttributeError, match="has no attribute `1`"):
        model.set_submodule("1", nn.ReLU(), strict=True)
    for lib in (nn, torch.nn):  # the module is checked before the path
        with pytest.raises(ValueError, match="`module` is not an nn.Module"):
            lib.Sequential(lib.Linear(3, 2)).set_submodule("a.b", 3)
    norm = nn.BatchNorm2d(2)
    norm.running_mean = torch.ones(2)
    assert isinstance(norm.running_mean, np.ndarray) and (norm.running_mean == 1).all()
    with pytest.raises(RuntimeError, match="Only Tensors of floating point and complex dtype can require gradients"):
        torch.nn.Parameter(torch.arange(3))
    with pytest.raises(tensorops.ShapeError, match="Only Tensors of floating point and complex dtype"):
        nn.Parameter(np.arange(3))
    assert str(nn.Parameter(np.ones(2, np.float32))).startswith("Parameter containing:")
    with pytest.raises(TypeError, match="argument 'requires_grad' must be bool, not int"):
        model.requires_grad_(0)
