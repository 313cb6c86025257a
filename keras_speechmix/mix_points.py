"""`add_mix_points`: SpeechMix for a Keras model that already exists.

Rebuilds a Sequential or functional model (nested backbones included) with a
`HiddenMixup` after chosen layers, through `keras.models.clone_model`'s
`clone_function` (reuse each layer) and `call_function` (call it, then the
mixing point), so the user's model code is never touched.
"""

import difflib
import math
import re

import keras
from keras.src.models.functional import Functional  # what clone_model dispatches on

from keras_speechmix.layer import HiddenMixup, _split_inputs

__all__ = ["add_mix_points"]

# keras.applications (and most hand-written CNNs) name a block's layers with a
# shared prefix: "block2b_add" (EfficientNet), "conv3_block4_out" (ResNet,
# DenseNet), "expanded_conv_3_project_bn" (MobileNetV3), "block_5_add"
# (MobileNetV2), "block4_pool" (VGG, Xception). (ConvNeXt's blocks end in
# unnamed `add` operations, so there the resolution rule places the points.)
_BLOCK_PREFIX = re.compile(
    r"^(.*?(?:block_?\d+[a-z]?|expanded_conv(?:_\d+)?))(?=[_/]|$)", re.IGNORECASE)
_AUTO = ("auto", "blocks")
_SUBCLASSED_HELP = (
    "add the points by hand: put `keras_speechmix.HiddenMixup(index=k)` "
    "layers (k = 0, 1, ...) in the model and call them with the plan inside "
    "`call` (`x, plan = inputs`; `h = self.mix_k(h, plan=plan, "
    "training=training)`), as examples/subclassed_model.py does")


def _is_graph(layer):
    return isinstance(layer, (keras.Sequential, Functional))


def _graph(model):
    """The functional graph of a Sequential or functional model."""
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None:
            raise ValueError(
                f"Sequential model '{model.name}' has no input shape yet: "
                "build it first (start it with keras.Input(shape) or call "
                "model.build(input_shape)).")
        return graph
    return model


def _walk(model, prefix=""):
    """Yields `(path, layer)` for every layer at every depth, in network order."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        path = f"{prefix}{layer.name}"
        yield path, layer
        if _is_graph(layer):
            yield from _walk(layer, path + "/")


def _output_producers(model):
    """Ids of the layers (at any depth) whose output is one of the model's."""
    found = set()
    for tensor in _graph(model).outputs:
        layer, _, index = tensor._keras_history
        found.add(id(layer))
        while _is_graph(layer):
            layer, _, index = _graph(layer).outputs[index]._keras_history
            found.add(id(layer))
    return found


def _nodes(graph):
    """The graph's computing nodes in topological order (as Keras runs them)."""
    nodes_by_depth = graph._nodes_by_depth
    return [node for depth in sorted(nodes_by_depth, reverse=True)
            for node in nodes_by_depth[depth]
            if node.operation is not None and not node.is_input]


def _trunk(model):
    """The layers every input-to-output path passes through, in order.

    Returns `(layer, output tensor)` for each such cut point; a nested
    model on the trunk is replaced by its own trunk. A layer inside a branch
    (a residual block's convolutions, a squeeze-excite side path) is not on
    the trunk: its output is one of several live tensors.
    """
    graph = _graph(model)
    nodes = _nodes(graph)
    last_use = {}
    for position, node in enumerate(nodes):
        for tensor in node.input_tensors:
            last_use[id(tensor)] = position
    for tensor in graph.outputs:
        last_use[id(tensor)] = len(nodes)
    live = {id(t) for t in graph.inputs if id(t) in last_use}
    trunk = []
    for position, node in enumerate(nodes):
        live -= {id(t) for t in node.input_tensors if last_use[id(t)] <= position}
        live |= {id(t) for t in node.outputs if id(t) in last_use}
        if len(node.outputs) == 1 and live == {id(node.outputs[0])}:
            if _is_graph(node.operation):
                trunk.extend(_trunk(node.operation))
            else:
                trunk.append((node.operation, node.outputs[0]))
    return trunk


def _size(tensor):
    """Number of positions of a channels-last map (None below rank 3)."""
    shape = tensor.shape
    if len(shape) < 3 or any(dim is None for dim in shape[1:-1]):
        return None
    return math.prod(shape[1:-1])


def _has_weights(layer):
    # Trunk entries may be bare operations (`keras.ops.add` in a graph).
    return bool(getattr(layer, "trainable_weights", None))


def _named_blocks(trunk):
    """The last trunk layer of each name-prefix block, in order."""
    last = {}
    for entry in trunk:
        match = _BLOCK_PREFIX.match(entry[0].name)
        if match:
            last.pop(match.group(1), None)  # keep dict order = order of block ends
            last[match.group(1)] = entry
    return list(last.values())


def _composite_blocks(trunk):
    """Trunk layers that hold weighted layers of their own (KerasHub blocks).

    Keras' own composite layers (`Bidirectional`, `TimeDistributed`,
    `MultiHeadAttention`) wrap one operation, not a block: they do not count.
    """
    return [entry for entry in trunk
            if isinstance(entry[0], keras.layers.Layer)
            and not type(entry[0]).__module__.startswith("keras.")
            and any(sub.weights for sub in entry[0]._flatten_layers(include_self=False))]


def _downsamples(tensor):
    """Whether the operation that made `tensor` lowered the resolution."""
    layer, node_index, _ = tensor._keras_history
    inputs = layer._inbound_nodes[node_index].input_tensors
    here = _size(tensor)
    return here is not None and any(
        _size(t) is not None and _size(t) > here for t in inputs)


def _stage_ends(blocks):
    """Blocks after which the resolution drops, and the last block.

    A block that ends by pooling (VGG's `block4_pool`) ends its stage too,
    although the next block works at the same, already lowered, resolution.
    """
    ends = []
    for (layer, tensor), following in zip(blocks, blocks[1:] + [None]):
        here = _size(tensor)
        there = None if following is None else _size(following[1])
        if (following is None or _downsamples(tensor)
                or (here is not None and there is not None and there < here)):
            ends.append((layer, tensor))
    return ends


def _downsampling_points(trunk):
    """Stage outputs of a model without named blocks, from resolution alone.

    At each drop of a channels-last map's resolution along the trunk the
    point is after a weightless downsampler (pooling), or before a weighted
    one (a strided convolution), skipping back over padding. Plus the last
    map before the network pools or flattens it. Nothing before the first
    layer with weights (the input's own scale is `input=True`'s).
    """
    points, previous, weights_seen = [], None, False
    for layer, tensor in trunk:
        size = _size(tensor)
        if size is None:
            if previous is not None and len(tensor.shape) < len(previous[1].shape):
                points.append(previous)  # the last map before pooling/flatten
            previous = None
            weights_seen = weights_seen or _has_weights(layer)
            continue
        if previous is not None and size < _size(previous[1]) and weights_seen:
            points.append(previous if _has_weights(layer) else (layer, tensor))
        weights_seen = weights_seen or _has_weights(layer)
        if previous is not None and size > _size(previous[1]) and not _has_weights(layer):
            continue  # padding: keep the map before it as the candidate
        previous = (layer, tensor)
    unique = []
    for entry in points:
        if all(entry[0] is not seen[0] for seen in unique):
            unique.append(entry)
    return unique


def _auto(model, mode):
    outputs = _output_producers(model)
    trunk = [entry for entry in _trunk(model) if id(entry[0]) not in outputs
             and not isinstance(entry[0], HiddenMixup)]
    blocks = _named_blocks(trunk) or _composite_blocks(trunk)
    if blocks:
        stages = _stage_ends(blocks)
        chosen = blocks if mode == "blocks" or len(stages) < 2 else stages
    elif mode == "blocks":
        raise ValueError(
            f"after='blocks' found no blocks in model '{model.name}': no layer "
            "names with a block prefix (block2b_..., conv3_block1_..., "
            "expanded_conv_3_...) and no layers holding layers on the path "
            "every input takes. Use after='auto' or name the layers.")
    else:
        chosen = _downsampling_points(trunk)
    if not chosen:
        raise ValueError(
            f"after={mode!r} found no stage or block outputs in model "
            f"'{model.name}' (no named blocks, no change of resolution along "
            "the path every input takes): name the layers, e.g. "
            "after=['conv_2', 'dense_1'], or pass a predicate.")
    return [layer for layer, _ in chosen]


def _by_name(model, everything, name):
    matches = {id(layer): layer for path, layer in everything
               if path == name or layer.name == name}
    if not matches:
        if any(tensor._keras_history[0].name == name
               for tensor in keras.tree.flatten(_graph(model).inputs)):
            raise ValueError(
                f"after={name!r} is an input of model '{model.name}': pass "
                "input=True to mix at the input.")
        close = difflib.get_close_matches(name, [p for p, _ in everything], n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "."
        raise ValueError(
            f"after={name!r}: model '{model.name}' has no layer of that name{hint} "
            "Names of nested layers may be given as 'backbone/layer'.")
    if len(matches) > 1:
        paths = [p for p, layer in everything if layer.name == name]
        raise ValueError(
            f"after={name!r} names {len(matches)} layers ({', '.join(paths)}): "
            "give the path of the one you mean.")
    return list(matches.values())


def _select_one(model, everything, selector):
    if isinstance(selector, str):
        if selector in _AUTO:
            return _auto(model, selector)
        return _by_name(model, everything, selector)
    if isinstance(selector, type):
        chosen = [layer for _, layer in everything if isinstance(layer, selector)]
        if not chosen:
            raise ValueError(
                f"after={selector!r}: model '{model.name}' has no layer of that class.")
        return chosen
    if callable(selector):
        chosen = [layer for _, layer in everything if selector(layer)]
        if not chosen:
            raise ValueError(
                f"after={selector!r}: the predicate chose no layer of model "
                f"'{model.name}'.")
        return chosen
    raise ValueError(
        "`after` must be a layer name, a layer class, a predicate "
        "`fn(layer) -> bool`, 'auto', 'blocks', a list of these, or None; "
        f"received {selector!r}.")


def _select(model, after):
    """The layers that `after` picks (a list is the union of its entries)."""
    if after is None:
        return []
    selectors = list(after) if isinstance(after, (list, tuple)) else [after]
    if not selectors:
        raise ValueError("`after` is an empty list: pass None for the input point only.")
    everything = [(path, layer) for path, layer in _walk(model)
                  if not isinstance(layer, HiddenMixup)]
    chosen = {}
    for selector in selectors:
        for layer in _select_one(model, everything, selector):
            chosen.setdefault(id(layer), layer)
    return list(chosen.values())


def _check(model, chosen):
    outputs = _output_producers(model)
    for layer in chosen:
        if id(layer) in outputs:
            raise ValueError(
                f"Layer '{layer.name}' gives model '{model.name}' its output: "
                "a mixing point there would mix the predictions, not hidden "
                "activations (the targets are already mixed). Choose a layer "
                "before it.")
        for node in layer._inbound_nodes:
            if len(node.outputs) != 1:
                raise ValueError(
                    f"Layer '{layer.name}' returns {len(node.outputs)} tensors, "
                    "so there is no single activation to mix after it: choose "
                    "the layer that consumes them, or the one that makes each.")


def _contains(model, ids):
    return any(id(layer) in ids for _, layer in _walk(model))


def _rebuild(model, mixers, input_mixer=None):
    """A copy of `model`'s graph (same layer objects) with the mixers called."""
    def nested(layer):
        if _is_graph(layer) and _contains(layer, mixers):
            return _rebuild(layer, mixers)
        return layer

    if isinstance(model, keras.Sequential):
        # clone_model refuses a call_function for Sequential models; their
        # layer list is all there is, so the points go into the list.
        layers = [input_mixer] if input_mixer is not None else []
        for layer in model.layers:
            layers.append(nested(layer))
            if id(layer) in mixers:
                layers.append(mixers[id(layer)])
        spec = _graph(model).inputs[0]
        inputs = keras.Input(batch_shape=spec.shape, dtype=spec.dtype,
                             name=model._layers[0].name
                             if isinstance(model._layers[0], keras.layers.InputLayer)
                             else None)
        return keras.Sequential([inputs, *layers], name=model.name,
                                trainable=model.trainable)

    original = {}  # id(rebuilt nested model) -> the model it was rebuilt from

    def clone_function(layer):
        new = nested(layer)
        original[id(new)] = layer
        return new

    inputs = keras.tree.map_structure(
        lambda x: keras.Input(batch_shape=x.shape, dtype=x.dtype, name=x.name),
        model.input)
    mixed_inputs = {}
    if input_mixer is not None:
        for tensor in keras.tree.flatten(inputs):
            # One layer at every input: it is one mixing point, so a
            # multi-input model mixes all its inputs with the same partners.
            mixed_inputs[id(tensor)] = input_mixer(tensor)

    def call_function(layer, *args, **kwargs):
        if mixed_inputs:
            swap = lambda t: mixed_inputs.get(id(t), t)  # noqa: E731
            args, kwargs = keras.tree.map_structure(swap, (args, kwargs))
        outputs = layer(*args, **kwargs)
        mixer = mixers.get(id(original.get(id(layer), layer)))
        return outputs if mixer is None else mixer(outputs)

    return keras.models.clone_model(model, input_tensors=inputs,
                                    clone_function=clone_function,
                                    call_function=call_function)


def add_mix_points(model, after="auto", input=False, share_weights=True,
                   **mixup_kwargs):
    """Returns `model` with a `HiddenMixup` after chosen layers, for `SpeechMix`.

    The model's code is not touched: its graph is rebuilt with
    `keras.models.clone_model`, each layer reused and called as before, and a
    `HiddenMixup` called after each chosen layer (inside nested models too:
    a `keras.applications` backbone in a classifier gets its points where
    its layers are). Without a plan (inference, `predict`, `evaluate`,
    export) every `HiddenMixup` is the identity, so the result computes
    exactly what `model` computes. Train `SpeechMix(result)` on
    `partner_batches(..., mix_points=view.num_mix_points)`.

    Weights are **shared** by default: the result calls the very layers of
    `model`, so training it trains `model`, which you can then save, export
    and deploy as it was, without this package's layers (and a large
    backbone is not held twice). `share_weights=False` trains a copy
    instead (`keras.models.clone_model` with the weights copied), leaving
    `model` as it is.

    `model` keeps its graph, with no mixing point: fitting (or evaluating)
    it on `partner_batches` by mistake, instead of the view, raises an error
    that points to the view (its `train_step` and `test_step` refuse
    `(x, plan)` batches; other data passes through unchanged).

    `after="auto"` finds the outputs of the model's stages from its
    structure (as ManifoldMixupV2 does from PyTorch's module tree):

    1. The *trunk*: the layers every path from the inputs to the outputs
       passes through (inside nested models too). A residual block's inner
       layers, or a squeeze-excite branch, are not on it; the block's
       output is.
    2. *Blocks*: trunk layers grouped by the block prefix of their names,
       as `keras.applications` names them (`block2b_...` EfficientNet,
       `conv3_block4_...` ResNet and DenseNet, `block_5_...` MobileNetV2,
       `expanded_conv_3_...` MobileNetV3, `block4_...` VGG); each
       block's output is its last trunk layer. Where no
       names carry blocks, trunk layers that hold weighted layers of their
       own (a KerasHub transformer layer, a custom residual-block layer)
       are the blocks.
    3. *Stages*: the blocks after which the channels-last map's resolution
       drops, and the last block. `"auto"` picks these (every block when
       the resolution never drops, as in a transformer); `"blocks"` picks
       every block.
    4. A model with no blocks at all (a plain CNN with its own layer names):
       at each drop of resolution along the trunk, the point after a
       pooling layer or before a strided convolution (for ConvNeXt: after
       the norm that opens each downsampling), and the last map before the
       network pools or flattens it; nothing before the first layer with
       weights.

    The model's output layer is never chosen. `mix_layers(result)` lists the
    points (named `mix_after_<layer>`, `mix_input`) in network order.

    Args:
        model: a built Sequential or functional Keras model (or a subclass
            of `keras.Model` built from inputs and outputs, as
            `keras.applications` and KerasHub backbones are). A subclassed
            model that defines `call` cannot be rebuilt: add points by hand.
        after: which layers get a point after them: a layer name (nested
            layers by their own name or as `"backbone/layer"`), a layer
            class, a predicate `fn(layer) -> bool` (asked about every layer
            at every depth, nested models included), `"auto"` (stage
            outputs, above), `"blocks"` (every block output), a list of
            these (their union, e.g. `["logmel", "auto"]`), or `None`
            (input point only). Every entry must pick at least one layer.
        input: also mix at the model's input (point 0; every input of a
            multi-input model, with the same partners and ratios).
        share_weights: reuse `model`'s layers and weights (default), or
            train a copy.
        **mixup_kwargs: arguments for every new `HiddenMixup` (`rule=`,
            `skip_inactive=`, ...); not `name` or `index`.

    Returns:
        A model of the same kind (Sequential stays Sequential; a functional
        subclass becomes a plain functional model) with the same inputs and
        outputs and at least one `HiddenMixup`.

    Raises:
        ValueError: for a subclassed or unbuilt model, a name that matches
            no layer (or several), a choice that picks the output layer or a
            layer returning several tensors, or nothing chosen at all.

    Example:

    >>> import keras, numpy as np
    >>> import keras_speechmix as ksm
    >>> inputs = keras.Input((40, 32, 1))
    >>> h = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    >>> h = keras.layers.MaxPooling2D(name="pool1")(h)
    >>> h = keras.layers.Conv2D(16, 3, activation="relu", name="conv2")(h)
    >>> h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    >>> model = keras.Model(inputs, keras.layers.Dense(5, name="head")(h))
    >>> mixing = ksm.add_mix_points(model, after="auto", input=True)
    >>> [layer.name for layer in ksm.mix_layers(mixing)]
    ['mix_input', 'mix_after_pool1', 'mix_after_conv2']
    >>> x = np.random.rand(2, 40, 32, 1).astype("float32")
    >>> bool(np.allclose(mixing.predict(x, verbose=0), model.predict(x, verbose=0)))
    True
    >>> view = ksm.SpeechMix(mixing)        # then view.compile(...), view.fit(...)
    >>> view.num_mix_points
    3
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`model` must be a Keras model; received {type(model).__name__}.")
    if not _is_graph(model):
        raise ValueError(
            f"Model '{model.name}' is a subclassed {type(model).__name__}: its "
            "layers are called in Python code Keras cannot see, so no mixing "
            f"point can be added from outside. Rebuild it as a functional "
            f"model, or {_SUBCLASSED_HELP}.")
    _graph(model)  # a Sequential model must be built
    taken = sorted({"name", "index"} & set(mixup_kwargs))
    if taken:
        raise ValueError(
            f"add_mix_points names and numbers the HiddenMixup layers itself; "
            f"remove {', '.join(taken)} from its keyword arguments.")
    if share_weights not in (True, False):
        raise ValueError(
            f"`share_weights` must be True or False; received {share_weights!r}.")
    original = model
    if not share_weights:
        copy = keras.models.clone_model(model)
        for target, source in zip(copy.weights, model.weights, strict=True):
            target.assign(source)
        model = copy
    chosen = _select(model, after)
    if not chosen and not input:
        raise ValueError(
            "Nothing to add: `after=None` and `input=False`. Pass layers in "
            "`after` or `input=True`.")
    _check(model, chosen)
    mixers = {id(layer): HiddenMixup(name=f"mix_after_{layer.name}", **mixup_kwargs)
              for layer in chosen}
    input_mixer = HiddenMixup(name="mix_input", **mixup_kwargs) if input else None
    mixing = _rebuild(model, mixers, input_mixer)
    _refuse_partner_batches(original)
    return mixing


def _refuse_partner_batches(model):
    """Makes `model.fit` / `model.evaluate` on SpeechMix batches raise.

    `model` has no HiddenMixup, so no layer of this package runs in its
    forward pass, and Keras feeds a Sequential model only `x` of
    `(x, plan)` (with a structure warning): it would fit the mixed targets
    with unmixed activations. Its `train_step` / `test_step` are the one
    place every backend hands it the whole batch, so they are wrapped on
    this instance (Keras itself is not patched) to check the batch's
    structure (once per trace on TensorFlow and JAX); any other batch passes
    through unchanged.
    """
    for name in ("train_step", "test_step"):
        step = getattr(model, name)
        if getattr(step, "_refuses_partner_batches", False):
            continue

        def checked(*args, _step=step, _name=name, **kwargs):
            data = args[-1] if args else kwargs.get("data")
            if isinstance(data, (tuple, list)) and data:
                x = keras.utils.unpack_x_y_sample_weight(tuple(data))[0]
                if _split_inputs(x)[1] is not None:
                    raise ValueError(_plain_fit_error(model, _name))
            return _step(*args, **kwargs)

        checked._refuses_partner_batches = True
        setattr(model, name, checked)
    # Functions traced before (an earlier fit) would still call the old steps.
    for name in ("train_function", "test_function"):
        if getattr(model, name, None) is not None:
            setattr(model, name, None)


def _plain_fit_error(model, step):
    use = "fit" if step == "train_step" else "evaluate"
    return (
        f"Model '{model.name}' was given a SpeechMix batch `(x, plan)` in `{use}`, "
        "but it has no HiddenMixup: it would fit mixed labels with unmixed "
        "activations. Train the model add_mix_points(model) returned (it shares "
        "this model's layers unless share_weights=False) through its view, which "
        "hands the plan over: `mixing = keras_speechmix.add_mix_points(model)`, "
        "`view = keras_speechmix.SpeechMix(mixing)`, then `view.fit(batches)`"
        + ("" if use == "fit" else "; evaluate this model on plain `(x, y)` data")
        + ".")
