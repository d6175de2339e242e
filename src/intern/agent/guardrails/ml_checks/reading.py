"""Reading one training script's syntax tree: what it trains, on which data and model, and its recipe.

The script is read with `ast`, never searched as text: a comment or a string that mentions
`push_to_hub` is not a push. Values are resolved from literals, names bound to literals, argparse
defaults, dataclass field defaults and `os.environ.get(NAME, default)`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from intern.agent.guardrails.ml_checks.recipe import (
    CUSTOM_LOOP,
    KEYWORDS,
    METHODS,
    Recipe,
    coerce,
    dtype_name,
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_UPLOADS = {"upload_folder", "upload_file", "create_commit", "upload_large_folder"}
_LOCAL_BUILDERS = {"json", "csv", "parquet", "text", "arrow", "pandas", "imagefolder", "audiofolder",
                   "videofolder", "webdataset", "xml", "sql", "generator"}
_NOT_MODELS = ("Tokenizer", "Processor", "Config", "FeatureExtractor", "PeftModel", "GenerationConfig")
_NOT_MODEL_PUSHERS = ("tokenizer", "tok", "processor", "processing_class", "dataset", "ds")
_MODEL_KWARGS = ("pretrained_model_name_or_path", "model_name", "model_id", "model_name_or_path")
_MODEL_ATTRS = ("model_name_or_path", "model_name", "model_id", "base_model")
_TRANSFORMS = {"map", "rename_column", "rename_columns", "add_column", "select_columns"}
# Optimizer classes a custom loop builds, as transformers' `optim` names.
_OPTIMIZERS = {"AdamW": "adamw_torch", "Adam": "adamw_torch", "AdamW8bit": "adamw_8bit", "Adam8bit": "adamw_8bit",
               "PagedAdamW8bit": "paged_adamw_8bit", "PagedAdamW": "paged_adamw_32bit",
               "PagedAdamW32bit": "paged_adamw_32bit", "SGD": "sgd", "Adafactor": "adafactor",
               "Lion": "lion_32bit", "Lion8bit": "lion_8bit"}
_ZERO_IN_NAME = re.compile(r"(?:zero|z)[_-]?([0-3])", re.IGNORECASE)


@dataclass(frozen=True)
class DatasetRef:
    id: str
    config: str | None = None
    split: str | None = None
    rows: str | None = None  # a split slice such as "[:5%]" or "[:1000]", as written


@dataclass
class ScriptFacts:
    """What the checks learn from one script (or from a `trl` command line)."""

    trainers: list[str] = field(default_factory=list)
    trains: bool = False
    datasets: list[DatasetRef] = field(default_factory=list)
    unreadable_datasets: list[str] = field(default_factory=list)
    local_datasets: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    transforms: list[str] = field(default_factory=list)
    recipe: Recipe = field(default_factory=Recipe)
    pushes: list[str] = field(default_factory=list)  # every push/upload call of the model, wherever it is
    maybe_pushes: list[str] = field(default_factory=list)  # push_to_hub=<expression the code cannot resolve>
    formatting_columns: list[str] = field(default_factory=list)  # columns the formatting_func reads
    starts_vllm_server: bool = False  # the job's command starts `trl vllm-serve` / `vllm serve` itself
    row_limit: int | None = None  # .select(range(N)) / .take(N) on the data


# --- values --------------------------------------------------------------------------------------------

def call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _receiver(func: ast.expr) -> str | None:
    """`AutoModelForCausalLM` in `AutoModelForCausalLM.from_pretrained` (or `transformers.X.from_pretrained`)."""
    if isinstance(func, ast.Attribute):
        return call_name(func.value)
    return None


class _Values:
    """Literal values the script binds to names and attributes."""

    def __init__(self, tree: ast.AST) -> None:
        self.names: dict[str, Any] = {}
        self.attrs: dict[str, Any] = {}
        self.dicts: dict[str, ast.Dict] = {}
        for node in ast.walk(tree):
            self._collect(node)

    def _collect(self, node: ast.AST) -> None:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            self._bind(self.names, node.targets[0].id, node.value)
            if isinstance(node.value, ast.Dict):
                self.dicts[node.targets[0].id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            # dataclass fields (TRL-style ScriptArguments) are read as attributes of an instance
            self._bind(self.attrs, node.target.id, node.value)
        elif isinstance(node, ast.Call) and call_name(node.func) == "add_argument":
            self._argparse(node)

    def _bind(self, table: dict[str, Any], name: str, value: ast.expr) -> None:
        if isinstance(value, ast.Call) and call_name(value.func) == "field":
            value = next((k.value for k in value.keywords if k.arg == "default"), value)
        resolved = self.literal(value)
        if resolved is not None and name not in table:
            table[name] = resolved

    def _argparse(self, call: ast.Call) -> None:
        opts = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        kw = {k.arg: k.value for k in call.keywords if k.arg}
        dest = self.literal(kw["dest"]) if "dest" in kw else None
        if dest is None:
            longs = [o for o in opts if o.startswith("--")] or opts
            dest = longs[0].lstrip("-").replace("-", "_") if longs else None
        if dest is None:
            return
        if "default" in kw and (value := self.literal(kw["default"])) is not None:
            self.attrs[dest] = value
        elif (action := self.literal(kw["action"]) if "action" in kw else None) in ("store_true", "store_false"):
            self.attrs[dest] = action == "store_false"

    def literal(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bool | int | float):
            return node.value
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        if isinstance(node, ast.Attribute):
            return self.attrs.get(node.attr)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            value = self.literal(node.operand)
            return -value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.FloorDiv):
            left, right = self.literal(node.left), self.literal(node.right)
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right)):
                return left * right if isinstance(node.op, ast.Mult) else left // right
            return None
        if isinstance(node, ast.Call) and call_name(node.func) in ("get", "getenv") and len(node.args) >= 2:
            receiver = ast.unparse(node.func)
            if "environ" in receiver or receiver.endswith("getenv"):
                return self.literal(node.args[1])
        if isinstance(node, ast.Call) and call_name(node.func) in ("int", "float", "bool") and node.args:
            return self.literal(node.args[0])
        return None


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _plain_split(split: Any) -> str | None:
    """'train[:10%]' -> 'train'; 'train+test' -> 'train'."""
    if not isinstance(split, str):
        return None
    return re.split(r"[\[+]", split, maxsplit=1)[0].strip() or None


def _recipe_owner(name: str) -> bool:
    """Calls whose keyword arguments are the training recipe (not a tokenizer or generate() call)."""
    return name.endswith(("Config", "Arguments", "Trainer")) or name in ("from_pretrained", "dict")


# --- the reader ----------------------------------------------------------------------------------------

class _Reader(ast.NodeVisitor):
    def __init__(self, tree: ast.Module) -> None:
        self.values = _Values(tree)
        self.facts = ScriptFacts()
        self.bases = {n.name: call_name(n.bases[0]) for n in ast.walk(tree)
                      if isinstance(n, ast.ClassDef) and n.bases}
        self.functions = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        self.parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        self.strong: dict[str, Any] = {}  # set by a config / arguments / trainer call
        self.weak: dict[str, Any] = {}  # set elsewhere (a tokenizer's max_length, a DataLoader's batch_size)
        self.trainer_names: set[str] = set()
        self.train_calls: list[ast.AST] = []
        self.pushes: list[tuple[str, ast.AST]] = []
        self.saves: list[ast.AST] = []

    def trainer_of(self, name: str) -> str:
        seen = set()
        while name in self.bases and name not in seen and name not in METHODS:
            seen.add(name)
            name = self.bases[name] or name
        return name

    def is_trainer_class(self, name: str) -> bool:
        return (name.endswith("Trainer") and not name.endswith("Callback")) or self.trainer_of(name) in METHODS

    def set(self, name: str, value: Any, strong: bool) -> None:
        value = coerce(name, value)
        if value is not None:
            (self.strong if strong else self.weak).setdefault(name, value)

    def visit_Assign(self, node: ast.Assign) -> None:
        if isinstance(node.value, ast.Call) and self.is_trainer_class(call_name(node.value.func) or ""):
            self.trainer_names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        target = node.target.id if isinstance(node.target, ast.Name) else ""
        if "epoch" in target.lower() and isinstance(node.iter, ast.Call) and call_name(node.iter.func) == "range":
            bound = node.iter.args[-1] if len(node.iter.args) == 1 else node.iter.args[1] if node.iter.args else None
            if bound is not None:
                self.set("num_train_epochs", self.values.literal(bound), strong=False)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                continue
            if key.value == "zero_optimization" and isinstance(value, ast.Dict):
                self._zero_stage(value)
            elif key.value in KEYWORDS:
                self._keyword_value(key.value, value, strong=True)
        self.generic_visit(node)

    def _zero_stage(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "stage":
                self.set("zero_stage", self.values.literal(value), strong=True)

    def visit_Call(self, node: ast.Call) -> None:
        name = call_name(node.func)
        if name:
            self._call(name, node)
        for kw in node.keywords:
            self._keyword(name or "call", kw, node)
        self.generic_visit(node)

    def _call(self, name: str, node: ast.Call) -> None:
        f = self.facts
        if self.is_trainer_class(name):
            f.trainers.append(self.trainer_of(name))
            f.trains = True
        elif name == "backward":
            f.trains = True
            self.train_calls.append(node)
        elif name == "train" and isinstance(node.func, ast.Attribute) and self._is_trainer(node.func.value):
            self.train_calls.append(node)
        elif name == "push_to_hub" and isinstance(node.func, ast.Attribute):
            self._push(node)
        elif name in _UPLOADS:
            self.pushes.append((f"{name}()", node))
        elif name == "save_model":
            self.saves.append(node)
        elif name == "load_dataset":
            self._dataset(node)
        elif name == "from_pretrained":
            self._model(node)
        elif name == "get_peft_model":  # a LoraConfig alone is not used until it is passed on
            self.set("peft", True, strong=True)
        elif name == "gradient_checkpointing_enable":
            self.set("gradient_checkpointing", True, strong=False)
        elif name in _OPTIMIZERS and (_receiver(node.func) in (None, "optim", "bnb", "bitsandbytes")):
            self.set("optimizer", _OPTIMIZERS[name], strong=False)
        elif name in ("select", "take") and isinstance(node.func, ast.Attribute) and node.args:
            self._row_limit(node.args[0])
        elif name in _TRANSFORMS and isinstance(node.func, ast.Attribute):
            f.transforms.append(f".{name}()")

    def _row_limit(self, arg: ast.expr) -> None:
        if isinstance(arg, ast.Call) and call_name(arg.func) == "range" and arg.args:
            arg = arg.args[-1] if len(arg.args) == 1 else arg.args[1]
        value = self.values.literal(arg)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            self.facts.row_limit = min(value, self.facts.row_limit or value)

    def _is_trainer(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.trainer_names
        return isinstance(node, ast.Call) and self.is_trainer_class(call_name(node.func) or "")

    def _push(self, node: ast.Call) -> None:
        assert isinstance(node.func, ast.Attribute)
        who = call_name(node.func.value) or ""
        if who.lower() not in _NOT_MODEL_PUSHERS and "tokenizer" not in who.lower():
            self.pushes.append((f"{ast.unparse(node.func)}()", node))

    def _keyword(self, owner: str, kw: ast.keyword, call: ast.Call) -> None:
        if kw.arg is None:
            return
        recipe_call = _recipe_owner(owner) or self.is_trainer_class(owner)
        if kw.arg in KEYWORDS and (recipe_call or kw.arg in ("max_length", "max_seq_length")):
            self._keyword_value(kw.arg, kw.value, strong=recipe_call)
        elif owner == "LoraConfig" and kw.arg == "r":
            self.set("lora_rank", self.values.literal(kw.value), strong=True)
        elif kw.arg in ("peft_config", "use_peft") and self.values.literal(kw.value) is not False \
                and not _is_none(kw.value):
            self.set("peft", True, strong=True)
        elif kw.arg in ("load_in_4bit", "load_in_8bit") and self.values.literal(kw.value) is True:
            self.set("quantization", kw.arg.removeprefix("load_in_"), strong=True)
        elif kw.arg in ("lr", "batch_size"):
            self.set({"lr": "learning_rate", "batch_size": "per_device_train_batch_size"}[kw.arg],
                     self.values.literal(kw.value), strong=False)
        elif kw.arg == "device_map" and owner == "from_pretrained":
            self.set("device_map", self.values.literal(kw.value), strong=True)
        elif kw.arg in ("fsdp", "deepspeed") and recipe_call and not _is_none(kw.value):
            self._sharding(kw.arg, kw.value)
        elif kw.arg == "formatting_func" and not _is_none(kw.value):
            self._formatting_func(kw.value)
        elif kw.arg == "ref_model" and self.is_trainer_class(owner) and not _is_none(kw.value):
            self.facts.recipe.ref_model = True
        elif kw.arg == "model" and self.is_trainer_class(owner):
            value = self.values.literal(kw.value)
            if isinstance(value, str):
                self._add_model(value)
        elif kw.arg == "model_name_or_path":
            value = self.values.literal(kw.value)
            if isinstance(value, str):
                self._add_model(value)

    def _keyword_value(self, arg: str, value: ast.expr, strong: bool) -> None:
        target = KEYWORDS[arg]
        if target == "torch_dtype":
            self.set(target, dtype_name(ast.unparse(value)) or dtype_name(str(self.values.literal(value))), strong)
        elif target == "push_to_hub":
            resolved = self.values.literal(value)
            if resolved is None and not _is_none(value):
                self.facts.maybe_pushes.append(f"push_to_hub={ast.unparse(value)}")
            self.set(target, resolved, strong)
        elif target == "hub_model_id" and not _is_none(value):
            resolved = self.values.literal(value)
            self.set(target, resolved if resolved is not None else ast.unparse(value), strong)
        else:
            self.set(target, self.values.literal(value), strong)

    def _sharding(self, arg: str, value: ast.expr) -> None:
        resolved = self.values.literal(value)
        if arg == "fsdp":
            text = resolved if isinstance(resolved, str) else ast.unparse(value)
            if text.strip("'\" []"):
                self.set("fsdp", text, strong=True)
            return
        if isinstance(value, ast.Name) and value.id in self.values.dicts:
            self.set("deepspeed", "dict", strong=True)
            self.visit_Dict(self.values.dicts[value.id])
        elif isinstance(value, ast.Dict):
            self.set("deepspeed", "dict", strong=True)
        elif isinstance(resolved, str):
            self.set("deepspeed", resolved, strong=True)
            if m := _ZERO_IN_NAME.search(resolved.rsplit("/", 1)[-1]):
                self.set("zero_stage", int(m.group(1)), strong=False)

    def _formatting_func(self, value: ast.expr) -> None:
        func: ast.AST | None = value
        name = "lambda"
        if isinstance(value, ast.Name):
            name, func = value.id, self.functions.get(value.id)
        self.set("formatting_func", name, strong=True)
        self.facts.transforms.append("formatting_func")
        for node in ast.walk(func) if func is not None else ():
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                    and isinstance(node.slice.value, str) and node.slice.value not in self.facts.formatting_columns:
                self.facts.formatting_columns.append(node.slice.value)

    def _dataset(self, node: ast.Call) -> None:
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        first = node.args[0] if node.args else kw.get("path")
        name = self.values.literal(first) if first is not None else None
        if not isinstance(name, str):
            self.facts.unreadable_datasets.append(ast.unparse(first) if first is not None else "load_dataset()")
            return
        if name.lower() in _LOCAL_BUILDERS or name.startswith(("/", "./", "../")):
            self.facts.local_datasets.append(name)
            return
        config_node = node.args[1] if len(node.args) > 1 else kw.get("name")
        config = self.values.literal(config_node) if config_node is not None else None
        split = self.values.literal(kw["split"]) if "split" in kw else None
        rows = split[split.index("["):] if isinstance(split, str) and "[" in split else None
        ref = DatasetRef(name, config if isinstance(config, str) else None, _plain_split(split), rows)
        if ref not in self.facts.datasets:
            self.facts.datasets.append(ref)

    def _model(self, node: ast.Call) -> None:
        receiver = _receiver(node.func) or ""
        if receiver.startswith("PeftModel") or receiver == "AutoPeftModelForCausalLM":
            self.set("peft", True, strong=True)  # adapters loaded to train further
        if any(word in receiver for word in _NOT_MODELS):
            return
        if receiver.endswith(("ForSequenceClassification", "ForTokenClassification")):
            self.set("classifier", True, strong=True)
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        arg = node.args[0] if node.args else next((kw[k] for k in _MODEL_KWARGS if k in kw), None)
        value = self.values.literal(arg) if arg is not None else None
        if isinstance(value, str):
            self._add_model(value)

    def _add_model(self, value: str) -> None:
        if _HUB_ID.match(value) and value not in self.facts.models:
            self.facts.models.append(value)

    # --- after the walk ---------------------------------------------------------------------------

    def finish(self) -> ScriptFacts:
        facts, recipe = self.facts, self.facts.recipe
        if not facts.models:
            for attr in _MODEL_ATTRS:
                value = self.values.attrs.get(attr)
                if isinstance(value, str):
                    self._add_model(value)
        for name in KEYWORDS.values():  # dataclass fields / argparse options named like the arguments
            if name in self.values.attrs:
                self.set(name, self.values.attrs[name], strong=False)
        for name, value in {**self.weak, **self.strong}.items():
            setattr(recipe, name, value)
        if facts.trainers:
            recipe.trainer = facts.trainers[0]
            recipe.method = METHODS.get(recipe.trainer, recipe.trainer.removesuffix("Trainer") or recipe.trainer)
        elif facts.trains:
            recipe.method = CUSTOM_LOOP
        facts.pushes = list(dict.fromkeys(label for label, _ in self.pushes))
        recipe.post_training_pushes = self._post_training_pushes()
        return facts

    def _post_training_pushes(self) -> list[str]:
        """Push calls that run after training: later in the same function, or in another function."""
        done = [self._end_of_training(n) for n in self.train_calls]
        pushes = list(self.pushes)
        if self.facts.recipe.push_to_hub:  # Trainer.save_model pushes when push_to_hub is on
            pushes += [("trainer.save_model() with push_to_hub=True", n) for n in self.saves]
        out = []
        for label, node in pushes:
            if not done or any(self._after(node, end) for end in done):
                out.append(label)
        return list(dict.fromkeys(out))

    def _end_of_training(self, node: ast.AST) -> ast.AST:
        """The outermost loop around a custom loop's backward(); the train() call itself otherwise."""
        outer, at = node, node
        while at in self.parents:
            at = self.parents[at]
            if isinstance(at, ast.For | ast.While):
                outer = at
            if isinstance(at, ast.FunctionDef):
                break
        return outer

    def _after(self, node: ast.AST, end: ast.AST) -> bool:
        if self._function(node) is not self._function(end):
            return True
        return getattr(node, "lineno", 0) > getattr(end, "end_lineno", 0)

    def _function(self, node: ast.AST) -> ast.AST | None:
        at = node
        while at in self.parents:
            at = self.parents[at]
            if isinstance(at, ast.FunctionDef | ast.AsyncFunctionDef):
                return at
        return None


def read_script(source: str) -> ScriptFacts:
    """The facts of a Python script; raises SyntaxError when it does not parse."""
    tree = ast.parse(source)
    reader = _Reader(tree)
    reader.visit(tree)
    return reader.finish()
