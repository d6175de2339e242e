"""ML checks for a job's approval card, computed by code from the script's syntax tree and Hub metadata.

The script is read with `ast`, never searched as text: a comment or a string that mentions
`push_to_hub` is not a push. Model sizes come from the Hub's safetensors metadata, never from a
model's name. Anything that cannot be reached becomes a "warn" line; no check raises.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from intern.agent.datasets_format import TRAINER_FORMATS
from intern.agent.errors import ToolFeedback
from intern.agent.pricing import format_duration, size_guide_for
from intern.agent.tools.base import Check
from intern.agent.tools.datasets import inspect_dataset

if TYPE_CHECKING:
    from intern.agent.context_deps import ToolContext
    from intern.agent.pricing import Flavor

SHORT_TRAINING = 2 * 3600
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_UPLOADS = {"upload_folder", "upload_file", "create_commit", "upload_large_folder"}
_LOCAL_BUILDERS = {"json", "csv", "parquet", "text", "arrow", "pandas", "imagefolder", "audiofolder",
                   "videofolder", "webdataset", "xml", "sql", "generator"}
_NOT_MODELS = ("Tokenizer", "Processor", "Config", "FeatureExtractor", "PeftModel", "GenerationConfig")
_MODEL_KWARGS = ("pretrained_model_name_or_path", "model_name", "model_id", "model_name_or_path")
_MODEL_ATTRS = ("model_name_or_path", "model_name", "model_id", "base_model")
_TRANSFORMS = {"map", "rename_column", "rename_columns", "add_column", "select_columns"}
_TRL_COMMANDS = {"sft": "SFTTrainer", "dpo": "DPOTrainer", "kto": "KTOTrainer", "grpo": "GRPOTrainer",
                 "reward": "RewardTrainer", "rloo": "RLOOTrainer", "orpo": "ORPOTrainer", "cpo": "CPOTrainer",
                 "online_dpo": "OnlineDPOTrainer", "gkd": "GKDTrainer", "xpo": "XPOTrainer", "nash_md": "NashMDTrainer",
                 "bco": "BCOTrainer", "prm": "PRMTrainer"}
_ADAPTER_HEADROOM = 1.3
Level = Literal["ok", "warn", "error"]


@dataclass(frozen=True)
class DatasetRef:
    id: str
    config: str | None = None
    split: str | None = None


@dataclass
class ScriptFacts:
    """What the checks learn from one script (or from a `trl` command line)."""

    trainers: list[str] = field(default_factory=list)
    trains: bool = False
    pushes: list[str] = field(default_factory=list)
    maybe_pushes: list[str] = field(default_factory=list)
    datasets: list[DatasetRef] = field(default_factory=list)
    unreadable_datasets: list[str] = field(default_factory=list)
    local_datasets: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    lora: bool = False
    weight_bits: int = 16
    transforms: list[str] = field(default_factory=list)


# --- reading the syntax tree -----------------------------------------------------------------------

def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _receiver(func: ast.expr) -> str | None:
    """`AutoModelForCausalLM` in `AutoModelForCausalLM.from_pretrained` (or `transformers.X.from_pretrained`)."""
    if isinstance(func, ast.Attribute):
        return _call_name(func.value)
    return None


class _Values:
    """Literal values the script binds to names and attributes, to resolve `load_dataset(DATASET)`."""

    def __init__(self, tree: ast.AST) -> None:
        self.names: dict[str, Any] = {}
        self.attrs: dict[str, Any] = {}
        for node in ast.walk(tree):
            self._collect(node)

    def _collect(self, node: ast.AST) -> None:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            self._bind(self.names, node.targets[0].id, node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            # dataclass fields (TRL-style ScriptArguments) are read as attributes of an instance
            self._bind(self.attrs, node.target.id, node.value)
        elif isinstance(node, ast.Call) and _call_name(node.func) == "add_argument":
            self._argparse(node)

    def _bind(self, table: dict[str, Any], name: str, value: ast.expr) -> None:
        if isinstance(value, ast.Call) and _call_name(value.func) == "field":
            value = next((k.value for k in value.keywords if k.arg == "default"), value)
        resolved = self.literal(value)
        if resolved is not None:
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
        if isinstance(node, ast.Call) and _call_name(node.func) in ("get", "getenv") and len(node.args) >= 2:
            receiver = ast.unparse(node.func)
            if "environ" in receiver or receiver.endswith("getenv"):
                return self.literal(node.args[1])
        return None


class _Reader(ast.NodeVisitor):
    def __init__(self, tree: ast.Module) -> None:
        self.values = _Values(tree)
        self.facts = ScriptFacts()
        self.bases = {n.name: _call_name(n.bases[0]) for n in ast.walk(tree)
                      if isinstance(n, ast.ClassDef) and n.bases}

    def trainer_of(self, name: str) -> str:
        seen = set()
        while name in self.bases and name not in seen and name not in TRAINER_FORMATS:
            seen.add(name)
            name = self.bases[name] or name
        return name

    def visit_Call(self, node: ast.Call) -> None:
        name = _call_name(node.func)
        if name:
            self._call(name, node)
        for kw in node.keywords:
            self._keyword(name or "call", kw)
        self.generic_visit(node)

    def _call(self, name: str, node: ast.Call) -> None:
        f = self.facts
        if name.endswith("Trainer") and not name.endswith("Callback"):
            trainer = self.trainer_of(name)
            f.trainers.append(trainer)
            f.trains = True
        elif name in ("backward",):
            f.trains = True
        elif name == "push_to_hub":
            f.pushes.append(f"{ast.unparse(node.func)}()")
        elif name in _UPLOADS:
            f.pushes.append(f"{name}()")
        elif name == "load_dataset":
            self._dataset(node)
        elif name == "from_pretrained":
            self._model(node)
        elif name in ("LoraConfig", "get_peft_model", "prepare_model_for_kbit_training"):
            f.lora = True
        elif name in _TRANSFORMS and isinstance(node.func, ast.Attribute):
            f.transforms.append(f".{name}()")

    def _keyword(self, owner: str, kw: ast.keyword) -> None:
        f = self.facts
        value = self.values.literal(kw.value)
        if kw.arg == "push_to_hub":
            if value is True:
                f.pushes.append(f"push_to_hub=True in {owner}")
            elif value is None:
                f.maybe_pushes.append(f"push_to_hub={ast.unparse(kw.value)} in {owner}")
        elif kw.arg == "hub_model_id" and not (isinstance(kw.value, ast.Constant) and kw.value.value is None):
            f.pushes.append(f"hub_model_id={ast.unparse(kw.value)} in {owner}")
        elif kw.arg in ("peft_config", "use_peft") and value is not False and not _is_none(kw.value):
            f.lora = True
        elif kw.arg == "load_in_4bit" and value is True:
            f.weight_bits = min(f.weight_bits, 4)
        elif kw.arg == "load_in_8bit" and value is True:
            f.weight_bits = min(f.weight_bits, 8)
        elif kw.arg == "formatting_func" and not _is_none(kw.value):
            f.transforms.append("formatting_func")
        elif kw.arg == "model" and owner.endswith("Trainer") and isinstance(value, str):
            self._add_model(value)
        elif kw.arg == "model_name_or_path" and isinstance(value, str):
            self._add_model(value)

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
        ref = DatasetRef(name, config if isinstance(config, str) else None, _plain_split(split))
        if ref not in self.facts.datasets:
            self.facts.datasets.append(ref)

    def _model(self, node: ast.Call) -> None:
        receiver = _receiver(node.func) or ""
        if any(word in receiver for word in _NOT_MODELS):
            return
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        arg = node.args[0] if node.args else next((kw[k] for k in _MODEL_KWARGS if k in kw), None)
        value = self.values.literal(arg) if arg is not None else None
        if isinstance(value, str):
            self._add_model(value)

    def _add_model(self, value: str) -> None:
        if _HUB_ID.match(value) and value not in self.facts.models:
            self.facts.models.append(value)


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _plain_split(split: Any) -> str | None:
    """'train[:10%]' -> 'train'; 'train+test' -> 'train'."""
    if not isinstance(split, str):
        return None
    return re.split(r"[\[+]", split, maxsplit=1)[0].strip() or None


def read_script(source: str) -> ScriptFacts:
    """The facts of a Python script; raises SyntaxError when it does not parse."""
    tree = ast.parse(source)
    reader = _Reader(tree)
    reader.visit(tree)
    facts = reader.facts
    if not facts.models:
        for attr in _MODEL_ATTRS:
            value = reader.values.attrs.get(attr)
            if isinstance(value, str):
                reader._add_model(value)
    return facts


# --- command lines ---------------------------------------------------------------------------------

def _unwrap_shell(command: list[str]) -> list[str]:
    """`bash -c "uv run python -c '…'"` -> the inner command's words."""
    for i, token in enumerate(command[:-2]):
        if os.path.basename(token) in ("sh", "bash") and command[i + 1] == "-c":
            try:
                return shlex.split(command[i + 2])
            except ValueError:
                return command
    return command


def _inline_code(command: list[str]) -> str | None:
    for i, token in enumerate(command[:-2]):
        if re.fullmatch(r"python(\d+(\.\d+)?)?", os.path.basename(token)) and command[i + 1] == "-c":
            return command[i + 2]
    return None


def _cli_options(tokens: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--"):
            key, _, value = token[2:].partition("=")
            if not value and i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                value, i = tokens[i + 1], i + 1
            out[key.replace("-", "_")] = value or "true"
        i += 1
    return out


def read_trl_command(command: list[str]) -> ScriptFacts | None:
    """`trl sft --model_name_or_path … --dataset_name …` read like a script."""
    at = next((i for i, t in enumerate(command[:-1])
               if os.path.basename(t) == "trl" and command[i + 1] in _TRL_COMMANDS), None)
    if at is None:
        return None
    opts = _cli_options(command[at + 2:])
    facts = ScriptFacts(trainers=[_TRL_COMMANDS[command[at + 1]]], trains=True)
    if opts.get("push_to_hub", "false").lower() in ("true", "1", "yes"):
        facts.pushes.append("--push_to_hub")
    if opts.get("hub_model_id"):
        facts.pushes.append(f"--hub_model_id {opts['hub_model_id']}")
    if opts.get("dataset_name"):
        facts.datasets.append(DatasetRef(opts["dataset_name"], opts.get("dataset_config"),
                                         opts.get("dataset_train_split")))
    if opts.get("model_name_or_path"):
        facts.models.append(opts["model_name_or_path"])
    facts.lora = opts.get("use_peft", "false").lower() in ("true", "1", "yes")
    facts.weight_bits = 4 if opts.get("load_in_4bit") else 8 if opts.get("load_in_8bit") else 16
    if "config" in opts:
        facts.maybe_pushes.append(f"--config {opts['config']} (not read)")
    return facts


# --- Hub metadata ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelSize:
    model: str
    params: int | None
    source: str  # where the figure came from, or why there is none


async def _model_size(ctx: ToolContext, model: str) -> ModelSize:
    try:
        info = await ctx.hub.call(ctx.hub.api.model_info, model, expand=["safetensors"])
    except Exception as exc:
        return ModelSize(model, None, _first_line(exc))
    if info.safetensors and info.safetensors.total:
        return ModelSize(model, int(info.safetensors.total), "safetensors metadata")
    try:
        info = await ctx.hub.call(ctx.hub.api.model_info, model, files_metadata=True)
    except Exception as exc:
        return ModelSize(model, None, _first_line(exc))
    weights = sum(s.size or 0 for s in info.siblings or [] if s.rfilename.endswith((".safetensors", ".bin")))
    if weights:
        return ModelSize(model, weights // 2, f"estimated from {weights / 1e9:.1f} GB of weight files at 2 bytes "
                                              "per parameter")
    return ModelSize(model, None, "the Hub has no safetensors metadata or weight files for it")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    detail = next((line for line in text if line.strip()), "")
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _billions(params: int) -> str:
    b = params / 1e9
    if b >= 10:
        return f"{b:.0f}B"
    if b >= 1:
        return f"{b:.1f}".rstrip("0").rstrip(".") + "B"
    return f"{params / 1e6:.0f}M"


# --- the checks ------------------------------------------------------------------------------------

def push_check(facts: ScriptFacts) -> Check:
    if facts.pushes:
        return Check("ok", "Pushes to the Hub: " + ", ".join(dict.fromkeys(facts.pushes)))
    if facts.maybe_pushes:
        return Check("warn", "Push to the Hub depends on " + ", ".join(facts.maybe_pushes)
                     + ": make sure it is on, or the trained model will be lost")
    if facts.trains:
        return Check("error", "No push to the Hub (push_to_hub / hub_model_id): the trained model will be lost")
    return Check("warn", "No push to the Hub (push_to_hub / upload_folder): whatever the job writes is lost "
                         "when it ends")


async def dataset_checks(ctx: ToolContext, facts: ScriptFacts) -> list[Check]:
    out = [Check("warn", f"Dataset {d} is loaded from local files: its format was not checked")
           for d in facts.local_datasets]
    out += [Check("warn", f"The dataset in load_dataset({d}) could not be read from the code: its format was "
                          "not checked") for d in facts.unreadable_datasets]
    trainer = next((t for t in facts.trainers if t in TRAINER_FORMATS), None)
    if trainer is None:
        if facts.datasets and facts.trainers:
            out.append(Check("warn", f"{facts.trainers[0]} has no fixed dataset format (the script's own "
                                     "preprocessing decides): the dataset format was not checked"))
        return out
    if not facts.datasets and not out:
        out.append(Check("warn", f"No load_dataset(\"…\") call with a dataset id found: the data {trainer} "
                                 "trains on was not checked"))
    results = await asyncio.gather(*(_dataset_fit(ctx, ref, trainer, facts) for ref in facts.datasets[:3]))
    return out + list(results)


async def _dataset_fit(ctx: ToolContext, ref: DatasetRef, trainer: str, facts: ScriptFacts) -> Check:
    try:
        ins = await inspect_dataset(ctx, ref.id, ref.config, ref.split)
    except ToolFeedback as exc:
        return Check("warn", f"Could not check dataset {ref.id} against {trainer}: {exc}")
    except Exception as exc:
        return Check("warn", f"Could not check dataset {ref.id} against {trainer}: {_first_line(exc)}")
    where = f"{ref.id} ({ins.config}/{ins.split})"
    accepted = TRAINER_FORMATS[trainer]
    fits = set(ins.report.fits)
    if fits & accepted:
        return Check("ok", f"Dataset {where} fits {trainer} as it is ({', '.join(sorted(fits & accepted))})")
    is_now = ", ".join(ins.report.fits) or "none of the known formats"
    needs = ", ".join(sorted(accepted))
    if facts.transforms:
        return Check("warn", f"Dataset {where} is {is_now} as it is, not what {trainer} takes ({needs}); the script "
                             f"transforms it ({', '.join(dict.fromkeys(facts.transforms))}): check the result fits")
    hint = next((c for c in ins.report.conversions if any(f"-> {a}" in c for a in accepted)), None)
    text = f"Dataset {where} does not fit {trainer}: it is {is_now}, {trainer} needs {needs}"
    return Check("error", text + (f". {hint}" if hint else ""))


def hardware_check(size: ModelSize, flavor: Flavor, facts: ScriptFacts) -> Check:
    assert size.params is not None
    vram, examples, _ = size_guide_for(size.params / 1e9)
    what = f"a {_billions(size.params)} model ({size.model}, {size.source})"
    level: Level = "warn" if size.source.startswith("estimated") else "error"
    if not flavor.is_gpu:
        return Check(level, f"Hardware {flavor.name} has no GPU: training {what} needs about {vram} GB of GPU "
                            f"memory (e.g. {examples})")
    if flavor.vram_gb >= vram:
        return Check("ok", f"Hardware {flavor.name} ({flavor.vram_gb} GB) fits {what} (guide: {vram} GB)")
    if facts.lora or facts.weight_bits < 16:
        weights = size.params * facts.weight_bits / 8 / 1e9
        method = f"{facts.weight_bits}-bit " if facts.weight_bits < 16 else ""
        if flavor.vram_gb >= weights * _ADAPTER_HEADROOM:
            return Check("ok", f"Hardware {flavor.name} ({flavor.vram_gb} GB) fits {what} with {method}adapters: "
                               f"the frozen weights take about {weights:.1f} GB (full fine-tuning guide: {vram} GB)")
        return Check(level, f"Hardware {flavor.name} ({flavor.vram_gb} GB) is too small for {what} even with "
                            f"{method}adapters: the weights alone take about {weights:.1f} GB (e.g. {examples})")
    return Check(level, f"Hardware {flavor.name} ({flavor.vram_gb} GB) is too small to fine-tune {what}: the guide "
                        f"is {vram} GB (e.g. {examples}), or use LoRA")


def timeout_check(size: ModelSize | None, timeout_seconds: int, timeout_given: bool, trains: bool) -> Check:
    shown = format_duration(timeout_seconds)
    if not trains:
        return Check("ok", f"Timeout {shown} (the script does not train)" if timeout_given
                     else "No timeout given: the Hub default of 30 minutes applies (the script does not train)")
    lead = f"Timeout {shown}" if timeout_given else "No timeout given: the Hub default of 30 minutes applies, which"
    if size is not None and size.params is not None:
        _, _, (low, high) = size_guide_for(size.params / 1e9)
        guide = f"(guide: {low:g}–{high:g} h)"
        model = f"a {_billions(size.params)} model"
        if timeout_seconds < low * 3600:
            return Check("warn" if size.source.startswith("estimated") else "error",
                         f"{lead} is too short for {model} {guide}")
        return Check("ok", f"{lead} fits {model} {guide}")
    if timeout_seconds < SHORT_TRAINING:
        return Check("warn", f"{lead} is short for a training job (under 2 h); the model size is unknown")
    return Check("ok", f"{lead} allows a training run of up to {shown}")


async def _sizes(ctx: ToolContext, facts: ScriptFacts) -> list[ModelSize]:
    return list(await asyncio.gather(*(_model_size(ctx, m) for m in facts.models[:3])))


def _code(script: str | None, command: list[str] | None) -> tuple[ScriptFacts | None, Check | None]:
    if script is not None and re.match(r"^https?://\S+$", script.strip()):
        return None, Check("warn", "Script is a URL: its code was not read by the checks")
    if script is None and command:
        command = _unwrap_shell(command)
        trl = read_trl_command(command)
        if trl is not None:
            return trl, None
        script = _inline_code(command)
        if script is None:
            return None, Check("warn", f"The checks could not read the code: the command runs "
                                       f"`{shlex.join(command)[:120]}`, not inline Python (python -c)")
    if script is None:
        return None, Check("warn", "No script or command given: nothing for the checks to read")
    try:
        return read_script(script), None
    except SyntaxError as exc:
        return None, Check("error", f"The script does not parse (SyntaxError at line {exc.lineno}: {exc.msg}): "
                                    "the job would fail at once")


async def job_checks(ctx: ToolContext, *, script: str | None, command: list[str] | None, flavor: Flavor,
                     timeout_seconds: int, timeout_given: bool) -> list[Check]:
    """One line per check: push, dataset vs trainer, hardware vs model size, timeout vs model size."""
    facts, problem = _code(script, command)
    if facts is None:
        assert problem is not None
        default = [] if timeout_given else [Check("warn", "No timeout given: the Hub default of 30 minutes applies")]
        return [problem, *default]
    datasets, sizes = await asyncio.gather(dataset_checks(ctx, facts), _sizes(ctx, facts))
    checks = [push_check(facts), *datasets]
    known = [s for s in sizes if s.params is not None]
    checks += [Check("warn", f"Could not read the size of model {s.model} from the Hub ({s.source}): hardware "
                             "and timeout were not checked against it") for s in sizes if s.params is None]
    largest = max(known, key=lambda s: s.params or 0) if known else None
    if facts.trains and largest is not None:
        checks.append(hardware_check(largest, flavor, facts))
    elif facts.trains and not facts.models:
        checks.append(Check("warn", "No Hub model id found in the script (from_pretrained / model=): hardware and "
                                    "timeout were not checked against a model size"))
    checks.append(timeout_check(largest, timeout_seconds, timeout_given, facts.trains))
    return [Check(c.level, " ".join(c.text.split())) for c in checks]
