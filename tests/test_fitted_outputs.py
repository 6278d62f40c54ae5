"""Guard: every decimal that a notebook prints after a fit is compared within a tolerance.

A trained or fitted number (a loss, an accuracy, a learned time constant, a scikit-learn score) goes
through floating-point sums whose rounding depends on the CPU (XLA targets its vector unit) and on the
BLAS (OpenBLAS picks kernels per CPU). nbval compares outputs exactly unless a cell carries the
``nbval-tolerance[=T]`` tag of ``tests/nbval_numbers.py``; an untagged cell that prints a fitted
decimal passes on the author's machine and fails on a reader's. This test finds such cells without
running anything, from each code cell's source and the cells before it:

- A cell **fits** when it calls a fitting function: a method or function named in :data:`FIT_CALLS`
  (``.fit(``, ``.score(``, ``fit_runs``, ``helpers.fit``, ``minimize`` ...), an optimiser's
  ``.update(`` or ``apply_updates``, or a function
  that an earlier cell (or this one) defined with any of these in its body, or with a hand-written
  gradient-descent loop (a loop that updates a variable with ``-=``).
- A name is **fitted** when a fitting or fitted cell assigns it, or is the object a fitting method is
  called on (``trainer.fit(...)`` makes ``trainer`` fitted); a cell that reads a fitted name is fitted.
- A fitted cell whose text outputs contain a decimal number (``0.97``, ``1e-3``) must carry the
  ``nbval-tolerance`` tag, with ``T`` at most :data:`MAX_TOLERANCE`, unless nbval does not compare its
  outputs at all (``nbval-ignore-output``, ``nbval-skip``: timings).

The analysis errs on the strict side: a cell that reads a fitted name for an exact print (a count of
compilations, a shape) is flagged only if it prints a decimal. A cell whose fitted-looking decimal is
truly exact documents that with the tag ``nbval-exact-after-fit`` *and* a comment in its source that
starts ``# exact after fit:`` followed by the reason (at least a few words); the tag alone is refused.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from nbval_numbers import TAG, cell_tolerance, output_texts

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

#: Functions and methods whose result (or whose object, afterwards) is fitted.
FIT_CALLS = frozenset(
    {
        "fit",  # scikit-learn, helpers.fit, helpers.MinibatchTrainer.fit, Trainer.fit
        "fit_runs",
        "fit_settings",
        "partial_fit",
        "fit_predict",
        "fit_transform",
        "score",  # scikit-learn's score fits nothing, but scores a fitted model
        "train",
        "train_step",
        "run_page_recipe",  # trains the original page's network
        "minimize",  # scipy.optimize
        "least_squares",
        "curve_fit",
        "polyfit",
        "lstsq",
        "apply_updates",  # optax
    }
)
#: A method call ``<optimiser>.update(...)`` or ``<optimiser>.step(...)``: an optimiser's step.
OPTIMISER = re.compile(r"optim|^opt$|^opt_|solver", re.I)
#: A constructor that takes a network and trains it later (``Trainer(net)``, ``MinibatchTrainer(net)``).
MODEL_OWNER = re.compile(r"Trainer$")
#: The largest tolerance the guard accepts: a wider one would make the comparison meaningless.
MAX_TOLERANCE = 0.5
EXEMPT_TAGS = {"nbval-ignore-output", "nbval-skip"}
EXACT_TAG = "nbval-exact-after-fit"
EXACT_REASON = re.compile(r"#\s*exact after fit:\s*(\S+\s+){3,}")
DECIMAL = re.compile(r"(?<![\w.])(?:\d+\.\d+|\d+(?:\.\d*)?[eE][-+]?\d+)(?![\w.]*\d)")
MAGIC = re.compile(r"^\s*[%!].*$", re.M)


def _called_name(call: ast.Call) -> tuple[str | None, str | None]:
    """The called function's name and, for a method call, the name of the object it is called on."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id, None
    if isinstance(func, ast.Attribute):
        base = func.value
        while isinstance(base, (ast.Attribute, ast.Subscript, ast.Call)):
            base = base.func if isinstance(base, ast.Call) else base.value
        return func.attr, base.id if isinstance(base, ast.Name) else None
    return None, None


def _is_fit_call(call: ast.Call, fitting: set[str]) -> bool:
    name, receiver = _called_name(call)
    if name is None:
        return False
    if name in FIT_CALLS or name in fitting:
        return True
    if name in ("update", "step") and receiver is not None and OPTIMISER.search(receiver):
        return True
    return False


def _descent_loop(node: ast.AST) -> bool:
    """A loop that updates a variable in place with ``-=``: hand-written gradient descent."""
    for loop in ast.walk(node):
        if isinstance(loop, (ast.For, ast.While)):
            for inner in ast.walk(loop):
                if isinstance(inner, ast.AugAssign) and isinstance(inner.op, ast.Sub):
                    return True
    return False


def _fits(node: ast.AST, fitting: set[str]) -> bool:
    """Whether ``node`` calls a fitting function anywhere (outside the functions it defines)."""
    return any(isinstance(n, ast.Call) and _is_fit_call(n, fitting) for n in ast.walk(node))


class CellFlow(ast.NodeVisitor):
    """Names a cell reads from earlier cells and assigns, the objects of its fitting method calls, the
    modules it imports and the functions it defines."""

    def __init__(self, fitting: set[str]):
        self.fitting = fitting
        self.first_load: dict[str, tuple[int, int]] = {}
        self.first_store: dict[str, tuple[int, int]] = {}
        self.local: set[str] = set()  # function arguments and comprehension variables
        self.modules: set[str] = set()
        self.receivers: set[str] = set()
        self.mutated: set[str] = set()  # ``runs[k] = ...``, ``net.w = ...``, ``results.append(...)``
        self.owned: set[str] = set()  # networks handed to a trainer: trained when it is
        self.modules_known: set[str] = set()  # modules imported by earlier cells
        self.calls_fit = False

    @property
    def reads(self) -> set[str]:
        """Names loaded before this cell assigns them: values that come from earlier cells."""
        return {
            name
            for name, at in self.first_load.items()
            if name not in self.local and (name not in self.first_store or at < self.first_store[name])
        }

    @property
    def stores(self) -> set[str]:
        return set(self.first_store) - self.local

    def visit_Name(self, node):
        at = (node.lineno, node.col_offset)
        first = self.first_store if isinstance(node.ctx, (ast.Store, ast.Del)) else self.first_load
        first[node.id] = min(first.get(node.id, at), at)

    def visit_arg(self, node):
        self.local.add(node.arg)

    def _visit_comprehension(self, node):
        for generator in node.generators:
            self.local |= {n.id for n in ast.walk(generator.target) if isinstance(n, ast.Name)}
        self.generic_visit(node)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _visit_comprehension

    def visit_Import(self, node):
        self.modules |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}

    visit_ImportFrom = visit_Import

    def _base(self, node) -> str | None:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    def visit_Subscript(self, node):
        if isinstance(node.ctx, ast.Store) and self._base(node):
            self.mutated.add(self._base(node))
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if isinstance(node.ctx, ast.Store) and self._base(node):
            self.mutated.add(self._base(node))
        self.generic_visit(node)

    def visit_Call(self, node):
        if isinstance(node.func, ast.Attribute) and self._base(node.func.value):
            self.mutated.add(self._base(node.func.value))
        name, receiver = _called_name(node)
        if name is not None and MODEL_OWNER.search(name):  # ``trainer = helpers.Trainer(net)``
            self.owned |= {a.id for a in node.args[:1] if isinstance(a, ast.Name)}
        if _is_fit_call(node, self.fitting):
            self.calls_fit = True
            if receiver is not None:
                self.receivers.add(receiver)
            # a function given the model first trains it: helpers.fit(net, ...), fit_runs(trainer, ...)
            if not isinstance(node.func, ast.Attribute) or receiver in self.modules_known:
                self.receivers |= {a.id for a in node.args[:1] if isinstance(a, ast.Name)}
        self.generic_visit(node)

    def _visit_function(self, node):
        self.first_store.setdefault(node.name, (node.lineno, node.col_offset))
        if _fits(node, self.fitting) or _descent_loop(node):
            self.fitting.add(node.name)  # calling it fits: later cells (and this one) see that
        self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = _visit_function

    def visit_Assign(self, node):
        # a lambda bound to a name: ``train = lambda x: model.fit(x)``
        if isinstance(node.value, ast.Lambda) and _fits(node.value, self.fitting):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.fitting.add(target.id)
        self.generic_visit(node)


def _string_decimals(tree: ast.AST) -> set[str]:
    """Decimals written in the cell's string literals (``f"agree to 1e-5: {ok}"``): text, not results."""
    return {
        d
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        for d in DECIMAL.findall(node.value)
    }


def _flow(statement: ast.stmt, fitting: set[str], modules: set[str] = frozenset()) -> CellFlow:
    flow = CellFlow(fitting)
    flow.modules_known = set(modules)
    flow.visit(statement)
    return flow


def flagged_cells(notebook) -> list[tuple[int, str]]:
    """``(index, reason)`` for each code cell of ``notebook`` (an nbformat node) that prints a decimal
    derived from a fit without an acceptable tolerance tag.

    Names are followed statement by statement: a statement that fits or reads a fitted name makes the
    names it assigns fitted; one that does neither makes them unfitted again (``x = data()`` after
    ``x = model.fit(...)``)."""
    fitting: set[str] = set()  # names of functions whose call fits
    fitted: set[str] = set()  # names bound to fitted values or objects
    modules: set[str] = set()  # imported names: a module is never fitted
    owners: set[tuple[str, str]] = set()  # (network, the trainer that owns it)
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        source = MAGIC.sub("", cell.source)
        try:
            tree = ast.parse(source)
        except SyntaxError:
            tree = None
        literal_decimals: set[str] = set()
        if tree is None:  # cannot follow the names: look for the calls in the text
            is_fitted = bool(re.search(r"\b(" + "|".join(sorted(FIT_CALLS)) + r")\(", source))
        else:
            literal_decimals = _string_decimals(tree)
            for statement in tree.body:  # first the functions the cell defines, wherever they are
                if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Assign)):
                    _flow(statement, fitting)
            is_fitted = False
            for statement in tree.body:
                flow = _flow(statement, fitting, modules)
                modules |= flow.modules
                owners |= {(net, target) for net in flow.owned for target in flow.stores}
                functions = {n.name for n in ast.walk(statement) if isinstance(n, ast.FunctionDef)}
                stores = flow.stores - functions  # a function is a fitting one or not, never a value
                if flow.calls_fit or flow.reads & fitted:
                    is_fitted = True
                    fitted |= (stores | flow.receivers | flow.mutated) - modules
                    fitted |= {net for net, owner in owners if owner in fitted}
                else:
                    fitted -= stores
        if not is_fitted:
            continue
        tags = set(cell.metadata.get("tags", []))
        if tags & EXEMPT_TAGS:
            continue
        decimals = [
            d
            for text in output_texts(cell.get("outputs", []))
            for d in DECIMAL.findall(text)
            if d not in literal_decimals
        ]
        if not decimals:
            continue
        if EXACT_TAG in tags:
            if not EXACT_REASON.search(cell.source):
                why = f"tagged {EXACT_TAG} without a '# exact after fit: <reason>' comment"
                problems.append((index, why))
            continue
        tolerance = cell_tolerance(sorted(tags))
        if tolerance is None:
            shown = ", ".join(decimals[:3])
            problems.append((index, f"prints fitted decimals ({shown}) without the {TAG} tag"))
        elif tolerance > MAX_TOLERANCE:
            why = f"tolerance {tolerance} is wider than {MAX_TOLERANCE}: nothing is compared"
            problems.append((index, why))
    return problems


# -- the notebooks ------------------------------------------------------------------------------


def test_there_are_notebooks_with_fitted_outputs():
    """The guard is not vacuous: notebooks exist and the analysis finds tagged fitted cells in them."""
    assert len(NOTEBOOKS) >= 11
    tagged = 0
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        tagged += sum(TAG in " ".join(c.metadata.get("tags", [])) for c in notebook.cells)
    assert tagged >= 10


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_fitted_decimals_are_compared_within_a_tolerance(path):
    problems = flagged_cells(nbformat.read(path, as_version=4))
    assert not problems, f"{path.name}: " + "; ".join(f"cell {i}: {why}" for i, why in problems)


# -- the guard itself, on synthetic notebooks ---------------------------------------------------


def _notebook(*cells):
    """A notebook of code cells ``(source, printed text, tags)``."""
    nb = nbformat.v4.new_notebook()
    for source, printed, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        if printed is not None:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
        cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    return nb


SKLEARN = "from sklearn.linear_model import LogisticRegression\n"


def test_an_untagged_scikit_learn_score_is_caught():
    source = SKLEARN + "print(LogisticRegression().fit(x, y).score(x_test, y_test))"
    assert [i for i, _ in flagged_cells(_notebook((source, "0.9733\n", [])))] == [0]
    assert flagged_cells(_notebook((source, "0.9733\n", ["nbval-tolerance"]))) == []
    assert flagged_cells(_notebook((source, "0.9733\n", ["nbval-tolerance=0.02"]))) == []
    assert flagged_cells(_notebook((source, "0.9733\n", ["nbval-ignore-output"]))) == []


def test_a_fitted_value_is_followed_into_later_cells():
    nb = _notebook(
        ("model = LogisticRegression().fit(x, y)", None, []),
        ("acc = model.score(x_test, y_test)", None, []),
        ("summary = {'lr': acc}", None, []),
        ("print(f\"{summary['lr']:.3f}\")", "0.973\n", []),
        ("print(f'{x.mean():.3f}')", "0.500\n", []),  # data, not fitted
    )
    assert [i for i, _ in flagged_cells(nb)] == [3]


def test_a_trainer_mutated_in_place_is_fitted():
    nb = _notebook(
        ("trainer = helpers.MinibatchTrainer(net)\ntrainer.fit(train, 20, 32)", None, []),
        ("print(trainer.evaluate(test)['accuracy'])", "0.97\n", []),
    )
    assert [i for i, _ in flagged_cells(nb)] == [1]


def test_a_function_that_fits_makes_its_callers_fitted():
    nb = _notebook(
        ("def score(model, a, b):\n    return model.fit(a, y).score(b, y)", None, []),
        ("print(score(LogisticRegression(), x, x_test))", "0.9600\n", []),
        ("def descend(w):\n    for _ in range(9):\n        w -= 0.1 * w\n    return w", None, []),
        ("print(descend(1.0))", "0.387\n", []),
        ("opt_state = optimizer.update(grads)\nprint(float(loss))", "0.25\n", []),
    )
    assert [i for i, _ in flagged_cells(nb)] == [1, 3, 4]


def test_exact_prints_and_unfitted_cells_pass():
    nb = _notebook(
        ("runs = helpers.fit_runs(net, data, seeds=[0, 1])", None, []),
        ("print(len(runs), 'runs')", "2 runs\n", []),  # an exact count after a fit
        ("print(f'{np.pi:.4f}')", "3.1416\n", []),  # no fit at all
    )
    assert flagged_cells(nb) == []


def test_the_guard_cannot_be_satisfied_trivially():
    source = SKLEARN + "print(LogisticRegression().fit(x, y).score(x, y))"
    # a tolerance so wide that nothing is compared
    assert flagged_cells(_notebook((source, "0.97\n", ["nbval-tolerance=100"])))
    # the exemption tag without a stated reason
    assert flagged_cells(_notebook((source, "0.97\n", [EXACT_TAG])))
    reason = "# exact after fit: the fit is a closed-form count of integers\n"
    assert flagged_cells(_notebook((reason + source, "0.97\n", [EXACT_TAG]))) == []


def test_a_network_trained_through_its_trainer_or_a_function_is_fitted():
    nb = _notebook(
        ("import helpers\nnet = helpers.SNN()\ntrainer = helpers.Trainer(net)\ntrainer.fit(x, y)", None, []),
        ("print(f\"{float(net.record(x)['spikes'].mean()):.3f}\")", "0.031\n", []),
        ("other = helpers.SNN()\nhelpers.fit(other, x, y, epochs=5)", None, []),
        ("print(f'{helpers.accuracy(other, x, y):.2f}')", "0.91\n", []),
        ("print(f'{x.mean():.2f}')", "0.01\n", []),  # the data stay unfitted
    )
    assert [i for i, _ in flagged_cells(nb)] == [1, 3]
