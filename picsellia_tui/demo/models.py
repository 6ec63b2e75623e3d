"""Two small, real digit classifiers for the demo workspace, trained in seconds.

Both learn scikit-learn's bundled 8x8 digits (1,797 images, no download) and share one
interface, so every bundled processing applies to either of them:

=================  =======  ===========  ================================================
tensor             type     shape        meaning
=================  =======  ===========  ================================================
``input``          float32  [batch, 64]  the image row by row, pixels scaled to [0, 1]
                                         (the data set's 0..16 divided by 16)
``label``          int64    [batch]      the predicted digit
``probabilities``  float32  [batch, 10]  softmax scores, one per digit
=================  =======  ===========  ================================================

- ``digits-mlp``: a multi-layer perceptron 64 -> 256 -> 128 -> 10 with ReLU, trained by
  scikit-learn's ``MLPClassifier`` and written as MatMul / Add / Relu nodes.
- ``digits-cnn``: Conv 3x3 with 32 filters -> ReLU -> MaxPool 2x2 -> Flatten (512)
  -> 64 -> 10, trained here with numpy (im2col, backprop, Adam).

Only standard ONNX operators (opset 17, nothing from ``ai.onnx.ml``), and the weights sit
in MatMul and Conv initializers, so dynamic int8 quantization, float16 conversion,
magnitude pruning, ORT and OpenVINO conversion all apply and shrink them for real.

Every version folder holds ``model.onnx``, ``eval.npz`` (``X`` float32 ``[n, 64]``, ``y``
int64 ``[n]``: the same held-out 25 % split for every model) and ``labels.json``
(``["0", ..., "9"]``). Seeds are fixed, so a rebuild trains the same models.

Try it: ``python -m picsellia_tui.demo.models OUTDIR``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from onnx import ModelProto, NodeProto, TensorProto

    FloatArray = npt.NDArray[np.float32]
    IntArray = npt.NDArray[np.int64]

INPUT_NAME = "input"
LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"
N_FEATURES = 64  # 8 x 8 pixels
LABELS = [str(digit) for digit in range(10)]

MODEL_FILE = "model.onnx"
EVAL_FILE = "eval.npz"
LABELS_FILE = "labels.json"

OPSET = 17
IR_VERSION = 8  # readable by every onnxruntime and OpenVINO release of the last years
SEED = 0
TEST_FRACTION = 0.25

MLP_HIDDEN = (256, 128)
MLP_EPOCHS = 60

CNN_FILTERS = 32
CNN_HIDDEN = 64
CNN_EPOCHS = 15
CNN_BATCH = 32
CNN_LEARNING_RATE = 1e-3
CNN_WEIGHT_DECAY = 1e-4


@dataclass(frozen=True, kw_only=True)
class DemoModel:
    """One model version written by `build_demo_models`, ready to import."""

    model_name: str
    version_name: str
    framework: str = "onnx"
    labels: list[str]
    description: str
    files_dir: Path
    tags: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        """The version's files (model, evaluation set, labels), sorted."""
        return sorted(p for p in self.files_dir.rglob("*") if p.is_file())


class DemoDependencyError(RuntimeError):
    """The libraries of the `demo` extra are not installed."""


@dataclass(frozen=True)
class _Split:
    x_train: FloatArray
    y_train: IntArray
    x_test: FloatArray
    y_test: IntArray


@dataclass
class _CnnWeights:
    conv_w: FloatArray  # [9, filters]: 3x3 kernel positions (row-major) x filters
    conv_b: FloatArray  # [filters]
    fc1_w: FloatArray  # [filters * 16, hidden], rows in NCHW flatten order
    fc1_b: FloatArray
    fc2_w: FloatArray  # [hidden, 10]
    fc2_b: FloatArray

    def arrays(self) -> dict[str, FloatArray]:
        return dict(vars(self))


def build_demo_models(dest: Path) -> list[DemoModel]:
    """Train, export and write the demo models under ``dest/<model>/<version>/``.

    Takes a few seconds on one core. Existing files of the same versions are replaced.
    """
    _require_demo_extra()
    from threadpoolctl import threadpool_limits

    # One BLAS thread: the models are tiny, so more threads only add contention (ten
    # times slower on a busy 2-core machine), and results do not depend on the core count.
    with threadpool_limits(limits=1):
        split = _digits_split()
        return [_build_mlp(Path(dest), split), _build_cnn(Path(dest), split)]


def _require_demo_extra() -> None:
    try:
        import numpy  # noqa: F401
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import sklearn  # noqa: F401
        import threadpoolctl  # noqa: F401  (a scikit-learn dependency)
    except ImportError as exc:
        raise DemoDependencyError(
            f"the demo models need the 'demo' extra ({exc.name} is missing): "
            "pip install 'picsellia-tui[demo]'"
        ) from exc


def _digits_split() -> _Split:
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SEED, stratify=y
    )
    return _Split(x_train, y_train, x_test, y_test)


# --- digits-mlp -------------------------------------------------------------------


def _build_mlp(dest: Path, split: _Split) -> DemoModel:
    layers = _train_mlp(split)
    model = _mlp_to_onnx(layers)
    sizes = " -> ".join(str(n) for n in (N_FEATURES, *MLP_HIDDEN, len(LABELS)))
    return _write_version(
        dest,
        model_name="digits-mlp",
        version_name="v1",
        model=model,
        split=split,
        description=(
            f"Multi-layer perceptron {sizes} (ReLU) trained by scikit-learn on the 8x8 "
            "digits; float32 ONNX, MatMul weights"
        ),
        tags=["demo", "mlp", "fp32"],
    )


def _train_mlp(split: _Split) -> list[tuple[FloatArray, FloatArray]]:
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=MLP_HIDDEN,
        activation="relu",
        alpha=1e-4,
        max_iter=MLP_EPOCHS,
        random_state=SEED,
    )
    with warnings.catch_warnings():
        # A fixed, short budget on purpose: accuracy is already ~98 % by then.
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(split.x_train, split.y_train)
    # argmax over the output units must be the digit itself
    assert list(clf.classes_) == list(range(len(LABELS)))
    return [
        (w.astype(np.float32), b.astype(np.float32))
        for w, b in zip(clf.coefs_, clf.intercepts_, strict=True)
    ]


def _mlp_to_onnx(layers: list[tuple[FloatArray, FloatArray]]) -> ModelProto:
    nodes: list[NodeProto] = []
    initializers: list[TensorProto] = []
    _dense_stack(nodes, initializers, INPUT_NAME, layers, prefix="dense")
    return _finish_model("digits_mlp", nodes, initializers)


# --- digits-cnn -------------------------------------------------------------------


def _build_cnn(dest: Path, split: _Split) -> DemoModel:
    weights = _train_cnn(split)
    model = _cnn_to_onnx(weights)
    return _write_version(
        dest,
        model_name="digits-cnn",
        version_name="v1",
        model=model,
        split=split,
        description=(
            f"Small CNN: Conv 3x3 x{CNN_FILTERS} -> ReLU -> MaxPool 2x2 -> "
            f"{CNN_FILTERS * 16} -> {CNN_HIDDEN} -> 10, trained with numpy on the 8x8 digits; "
            "float32 ONNX, Conv and MatMul weights"
        ),
        tags=["demo", "cnn", "fp32"],
    )


def _patches(x: FloatArray) -> FloatArray:
    """[n, 64] images -> [n, 64, 9]: the zero-padded 3x3 neighbourhood of each pixel."""
    import numpy as np

    padded = np.pad(x.reshape(-1, 8, 8), ((0, 0), (1, 1), (1, 1)))
    cols = [padded[:, i : i + 8, j : j + 8] for i in range(3) for j in range(3)]
    return np.stack(cols, axis=-1).reshape(-1, 64, 9)


def _cnn_forward(patches: FloatArray, w: _CnnWeights) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Logits and the activations backprop needs. Layout NHWC inside, NCHW at flatten."""
    import numpy as np

    n = patches.shape[0]
    conv = patches @ w.conv_w + w.conv_b  # [n, 64 positions, C]
    blocks = np.maximum(conv, 0).reshape(n, 4, 2, 4, 2, CNN_FILTERS)  # 2x2 pooling windows
    pooled = blocks.max(axis=(2, 4))  # [n, 4, 4, C]
    flat = pooled.transpose(0, 3, 1, 2).reshape(n, CNN_FILTERS * 16)  # as ONNX Flatten(NCHW)
    hidden = np.maximum(flat @ w.fc1_w + w.fc1_b, 0)
    logits = hidden @ w.fc2_w + w.fc2_b
    cache = {"conv": conv, "blocks": blocks, "pooled": pooled, "flat": flat, "hidden": hidden}
    return logits, cache


def _cnn_gradients(patches: FloatArray, y: IntArray, w: _CnnWeights) -> dict[str, FloatArray]:
    """Gradients of the mean cross-entropy for one batch."""
    import numpy as np

    n = patches.shape[0]
    logits, c = _cnn_forward(patches, w)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    d_logits = probs
    d_logits[np.arange(n), y] -= 1.0
    d_logits /= n

    grads = {"fc2_w": c["hidden"].T @ d_logits, "fc2_b": d_logits.sum(axis=0)}
    d_hidden = (d_logits @ w.fc2_w.T) * (c["hidden"] > 0)
    grads["fc1_w"] = c["flat"].T @ d_hidden
    grads["fc1_b"] = d_hidden.sum(axis=0)
    d_pooled = (d_hidden @ w.fc1_w.T).reshape(n, CNN_FILTERS, 4, 4).transpose(0, 2, 3, 1)
    # max pooling routes the gradient to the window's maximum
    winners = c["blocks"] == c["pooled"][:, :, None, :, None, :]
    d_blocks = winners * d_pooled[:, :, None, :, None, :]
    d_conv = d_blocks.reshape(n, 64, CNN_FILTERS) * (c["conv"] > 0)
    grads["conv_w"] = np.einsum("npk,npc->kc", patches, d_conv)
    grads["conv_b"] = d_conv.sum(axis=(0, 1))
    return grads


def _train_cnn(split: _Split) -> _CnnWeights:
    import numpy as np

    rng = np.random.default_rng(SEED)

    def he(fan_in: int, shape: tuple[int, ...]) -> FloatArray:
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)

    w = _CnnWeights(
        conv_w=he(9, (9, CNN_FILTERS)),
        conv_b=np.zeros(CNN_FILTERS, np.float32),
        fc1_w=he(CNN_FILTERS * 16, (CNN_FILTERS * 16, CNN_HIDDEN)),
        fc1_b=np.zeros(CNN_HIDDEN, np.float32),
        fc2_w=he(CNN_HIDDEN, (CNN_HIDDEN, len(LABELS))),
        fc2_b=np.zeros(len(LABELS), np.float32),
    )
    patches = _patches(split.x_train)  # the first layer's im2col never changes
    first = {k: np.zeros_like(v) for k, v in w.arrays().items()}  # Adam moments
    second = {k: np.zeros_like(v) for k, v in w.arrays().items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    step = 0
    for _ in range(CNN_EPOCHS):
        order = rng.permutation(len(split.y_train))
        for start in range(0, len(order), CNN_BATCH):
            batch = order[start : start + CNN_BATCH]
            grads = _cnn_gradients(patches[batch], split.y_train[batch], w)
            step += 1
            for name, value in w.arrays().items():
                g = grads[name]
                if name.endswith("_w"):
                    g = g + CNN_WEIGHT_DECAY * value
                first[name] = beta1 * first[name] + (1 - beta1) * g
                second[name] = beta2 * second[name] + (1 - beta2) * g * g
                m_hat = first[name] / (1 - beta1**step)
                v_hat = second[name] / (1 - beta2**step)
                update = CNN_LEARNING_RATE * m_hat / (np.sqrt(v_hat) + eps)
                setattr(w, name, (value - update).astype(np.float32))
    return w


def _cnn_to_onnx(w: _CnnWeights) -> ModelProto:
    import numpy as np
    from onnx import helper, numpy_helper

    conv_weight = np.ascontiguousarray(w.conv_w.T.reshape(CNN_FILTERS, 1, 3, 3))
    initializers = [
        numpy_helper.from_array(np.array([-1, 1, 8, 8], np.int64), "image_shape"),
        numpy_helper.from_array(conv_weight, "conv.weight"),
        numpy_helper.from_array(w.conv_b, "conv.bias"),
    ]
    nodes = [
        helper.make_node("Reshape", [INPUT_NAME, "image_shape"], ["image"], name="to_image"),
        helper.make_node(
            "Conv",
            ["image", "conv.weight", "conv.bias"],
            ["conv"],
            name="conv",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node("Relu", ["conv"], ["conv_relu"], name="conv_relu"),
        helper.make_node(
            "MaxPool", ["conv_relu"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("Flatten", ["pool"], ["features"], name="flatten", axis=1),
    ]
    layers = [(w.fc1_w, w.fc1_b), (w.fc2_w, w.fc2_b)]
    _dense_stack(nodes, initializers, "features", layers, prefix="fc")
    return _finish_model("digits_cnn", nodes, initializers)


# --- shared ONNX plumbing ---------------------------------------------------------


def _dense_stack(
    nodes: list[NodeProto],
    initializers: list[TensorProto],
    x: str,
    layers: list[tuple[FloatArray, FloatArray]],
    prefix: str,
) -> None:
    """MatMul + Add per layer, ReLU between them; the last one writes ``logits``.

    MatMul (not Gemm) because ONNX Runtime's dynamic quantization covers MatMul.
    """
    from onnx import helper, numpy_helper

    for i, (weight, bias) in enumerate(layers, start=1):
        last = i == len(layers)
        name = f"{prefix}{i}"
        initializers += [
            numpy_helper.from_array(weight, f"{name}.weight"),
            numpy_helper.from_array(bias, f"{name}.bias"),
        ]
        out = "logits" if last else name
        nodes += [
            helper.make_node("MatMul", [x, f"{name}.weight"], [f"{name}_mm"], name=f"{name}_mm"),
            helper.make_node("Add", [f"{name}_mm", f"{name}.bias"], [out], name=name),
        ]
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"{name}_relu"], name=f"{name}_relu"))
            x = f"{name}_relu"
    nodes += [
        helper.make_node("Softmax", ["logits"], [PROBABILITIES_OUTPUT], name="softmax", axis=1),
        helper.make_node("ArgMax", ["logits"], [LABEL_OUTPUT], name="argmax", axis=1, keepdims=0),
    ]


def _finish_model(
    graph_name: str, nodes: list[NodeProto], initializers: list[TensorProto]
) -> ModelProto:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        graph_name,
        inputs=[
            helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", N_FEATURES])
        ],
        outputs=[
            helper.make_tensor_value_info(LABEL_OUTPUT, TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info(
                PROBABILITIES_OUTPUT, TensorProto.FLOAT, ["batch", len(LABELS)]
            ),
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="picsellia-tui demo",
        doc_string="8x8 digits classifier; input [batch, 64] float32 in [0, 1]",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def _write_version(
    dest: Path,
    *,
    model_name: str,
    version_name: str,
    model: ModelProto,
    split: _Split,
    description: str,
    tags: list[str],
) -> DemoModel:
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto

    files_dir = dest / model_name / version_name
    files_dir.mkdir(parents=True, exist_ok=True)
    model_path = files_dir / MODEL_FILE
    model_path.write_bytes(model.SerializeToString())
    _write_npz(files_dir / EVAL_FILE, {"X": split.x_test, "y": split.y_test})
    (files_dir / LABELS_FILE).write_text(json.dumps(LABELS) + "\n", encoding="utf-8")

    # The metrics are measured on the written file, as any evaluator would.
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    (predicted,) = session.run([LABEL_OUTPUT], {INPUT_NAME: split.x_test})
    parameters = sum(
        int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == TensorProto.FLOAT
    )
    return DemoModel(
        model_name=model_name,
        version_name=version_name,
        labels=list(LABELS),
        description=description,
        files_dir=files_dir,
        tags=tags,
        metrics={
            "accuracy": float(np.mean(predicted == split.y_test)),
            "size_bytes": model_path.stat().st_size,
            "parameters": parameters,
            "eval_samples": len(split.y_test),
        },
    )


def _write_npz(path: Path, arrays: dict[str, FloatArray | IntArray]) -> None:
    """Like ``numpy.savez_compressed`` but byte-for-byte reproducible (fixed timestamps),
    so a rebuilt demo gives the same content hashes."""
    import numpy as np

    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m picsellia_tui.demo.models",
        description="Train the demo digit classifiers and write their versions under OUTDIR.",
    )
    parser.add_argument("outdir", type=Path, help="folder to write <model>/<version>/ into")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        models = build_demo_models(args.outdir)
    except DemoDependencyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for m in models:
        print(
            f"{m.model_name} {m.version_name}: accuracy {m.metrics['accuracy']:.2%}, "
            f"{int(m.metrics['size_bytes']):,} bytes, {int(m.metrics['parameters']):,} "
            f"parameters -> {m.files_dir}"
        )
    print(f"built {len(models)} demo models in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
