"""Build a single-node ONNX model from a case of onnx_cases.py and run it on onnxruntime."""
import numpy as np

_ELEM = {"float": 1, "int64": 7, "bool": 9}


def single_node_model(op, inputs, attrs, out_types, opset):
    """The model, and the feed of its non-constant inputs."""
    import onnx
    from onnx import helper
    names, graph_inputs, inits, feed = [], [], [], {}
    for i, v in enumerate(inputs):
        if isinstance(v, tuple) and v[0] == "const":
            name = f"c{i}"
            inits.append(onnx.numpy_helper.from_array(v[1], name))
        else:
            name = f"x{i}"
            graph_inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape))
            feed[name] = v
        names.append(name)
    outs = [f"y{i}" for i in range(len(out_types))]
    node = helper.make_node(op, names, outs, **attrs)
    graph = helper.make_graph([node], op, graph_inputs,
                              [helper.make_tensor_value_info(o, _ELEM[t], None) for o, t in zip(outs, out_types)],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)  # what the installed onnxruntime reads
    # onnx.checker wants the outputs' shapes: the reference evaluator's results give them
    from onnx.reference import ReferenceEvaluator
    results = ReferenceEvaluator(model).run(None, feed)
    for vi, r in zip(model.graph.output, results):
        vi.CopyFrom(helper.make_tensor_value_info(vi.name, vi.type.tensor_type.elem_type, np.shape(r)))
    return model, feed


def run_ort(model, feed):
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)
