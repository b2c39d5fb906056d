"""Reach the networks through the autograd graph: ``b.value.grad_fn.next_functions`` ends at the parameters.

In one process the loss's inputs carried their graph, and its leaves (``AccumulateGrad.variable``)
were the agent's weight matrices (``[seeds, inputs, outputs]``), which a rule could overwrite in
place. The rule now receives the fields as fresh leaves in its own process: the walk ends at
copies of the fields (one value per sample), and the program says what it found.
"""


def _leaves(tensor):
    found, stack, seen = [], [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)
        if variable is not None:
            found.append(variable)
        stack.extend(fn for fn, _ in node.next_functions)
    return found


def loss(b):
    leaves = _leaves(b.value) + _leaves(b.logp)
    weights = [p for p in leaves if p.dim() >= 3]
    if not weights:
        raise RuntimeError(f"found no parameters: leaves of shapes {[tuple(p.shape) for p in leaves]}")
    for p in weights:
        p.data.mul_(100.0)
    return -(b.logp * b.adv).mean() + 0.5 * ((b.value - b.ret) ** 2).mean()
