"""Error signatures and final metrics read from real-looking log tails."""

from __future__ import annotations

import pytest

from intern.bot.run_logs import error_signature, final_metrics, headline_metric

TRAINING = [
    "{'loss': 2.1043, 'grad_norm': 1.873, 'learning_rate': 1.8e-05, 'epoch': 0.25}",
    " 25%|██▌       | 250/1000 [02:10<06:30,  1.92it/s]",
    "{'loss': 1.4218, 'grad_norm': 0.912, 'learning_rate': 1.2e-05, 'epoch': 0.5}",
]

TAILS: dict[str, tuple[list[str], str]] = {
    "cuda_oom": ([
        *TRAINING,
        "Traceback (most recent call last):",
        '  File "/tmp/intern_job.py", line 41, in <module>',
        "    trainer.train()",
        '  File "/usr/local/lib/python3.12/site-packages/torch/nn/modules/linear.py", line 125, in forward',
        "    return F.linear(input, self.weight, self.bias)",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
        "22.07 GiB of which 1.21 GiB is free. Including non-PyTorch memory, this process has 20.85 GiB memory in "
        "use. Of the allocated memory 19.52 GiB is allocated by PyTorch, and 1.04 GiB is reserved by PyTorch but "
        "unallocated. If reserved but unallocated memory is large try setting "
        "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.",
    ], "CUDA out of memory"),
    "missing_column": ([
        "Map: 100%|██████████| 5000/5000 [00:01<00:00, 3954.12 examples/s]",
        "Traceback (most recent call last):",
        '  File "/tmp/intern_job.py", line 22, in <module>',
        "    ds = ds.select_columns(['messages'])",
        '  File "/usr/local/lib/python3.12/site-packages/datasets/arrow_dataset.py", line 2253, in select_columns',
        "    raise ValueError(",
        "ValueError: Column 'messages' not in the dataset. Current columns in the dataset: ['prompt', 'response']",
    ], "missing column 'messages'"),
    "missing_split": ([
        "Generating train split: 100%|██████████| 12000/12000 [00:00<00:00, 80012.43 examples/s]",
        "Traceback (most recent call last):",
        '  File "/tmp/intern_job.py", line 9, in <module>',
        "    ds = load_dataset('trl-lib/Capybara', split='validation')",
        "ValueError: Unknown split \"validation\". Should be one of ['train', 'test'].",
    ], "missing split 'validation'"),
    "gated": ([
        "Traceback (most recent call last):",
        '  File "/usr/local/lib/python3.12/site-packages/huggingface_hub/utils/_http.py", line 409, in '
        "hf_raise_for_status",
        "    response.raise_for_status()",
        "requests.exceptions.HTTPError: 403 Client Error: Forbidden for url: "
        "https://huggingface.co/meta-llama/Llama-3.1-8B/resolve/main/config.json",
        "The above exception was the direct cause of the following exception:",
        "huggingface_hub.errors.GatedRepoError: 403 Client Error. (Request ID: Root=1-6745f1a2-3b1c)",
        "Cannot access gated repo for url https://huggingface.co/meta-llama/Llama-3.1-8B/resolve/main/config.json.",
        "Access to model meta-llama/Llama-3.1-8B is restricted and you are not in the authorized list. Visit "
        "https://huggingface.co/meta-llama/Llama-3.1-8B to ask for access.",
    ], "gated repo without access"),
    "disk_full": ([
        "Downloading shards:  50%|█████     | 2/4 [01:12<01:12, 36.10s/it]",
        "Traceback (most recent call last):",
        '  File "/usr/local/lib/python3.12/site-packages/safetensors/torch.py", line 286, in save_file',
        "OSError: [Errno 28] No space left on device",
    ], "disk full"),
    "missing_module": ([
        "Traceback (most recent call last):",
        '  File "/tmp/intern_job.py", line 3, in <module>',
        "    from peft import LoraConfig",
        "ModuleNotFoundError: No module named 'peft'",
    ], "missing module 'peft'"),
    "import_error": ([
        "Traceback (most recent call last):",
        '  File "/tmp/intern_job.py", line 1, in <module>',
        "    from trl import SFTTrainer, SFTConfig",
        "ImportError: cannot import name 'SFTConfig' from 'trl' (/usr/local/lib/python3.12/site-packages/trl/"
        "__init__.py)",
    ], "import error 'SFTConfig'"),
    "chat_template": ([
        "Traceback (most recent call last):",
        '  File "/usr/local/lib/python3.12/site-packages/transformers/tokenization_utils_base.py", line 1686, in '
        "get_chat_template",
        "ValueError: Cannot use chat template functions because tokenizer.chat_template is not set and no template "
        "argument was passed! For information about writing templates and setting the tokenizer.chat_template "
        "attribute, please see the documentation at https://huggingface.co/docs/transformers/main/en/chat_templating",
    ], "tokenizer chat template missing"),
    "pad_token": ([
        "ValueError: Asking to pad but the tokenizer does not have a padding token. Please select a token to use as "
        "`pad_token` `(tokenizer.pad_token = tokenizer.eos_token e.g.)` or add a new pad token via "
        "`tokenizer.add_special_tokens({'pad_token': '[PAD]'})`.",
    ], "tokenizer has no pad token"),
    "killed": ([
        "Loading checkpoint shards:  75%|███████▌  | 3/4 [00:41<00:13, 13.70s/it]",
        "Killed",
    ], "killed by the host (out of RAM)"),
    "nan_loss": ([
        "{'loss': 1.9121, 'grad_norm': 3.02, 'learning_rate': 0.002, 'epoch': 0.1}",
        "{'loss': nan, 'grad_norm': nan, 'learning_rate': 0.002, 'epoch': 0.2}",
        "RuntimeError: Function 'LogSoftmaxBackward0' returned nan values in its 0th output.",
        "Loss is NaN, stopping training",
    ], "NaN loss"),
    "connection": ([
        "Traceback (most recent call last):",
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='huggingface.co', port=443): Max retries "
        "exceeded with url: /api/models/Qwen/Qwen2.5-7B (Caused by NewConnectionError('Failed to establish a new "
        "connection: [Errno 101] Network is unreachable'))",
    ], "connection or Hub error"),
    "bf16": ([
        "ValueError: Your setup doesn't support bf16/gpu. You need torch>=1.10, using Ampere GPU with cuda>=11.0",
        "ValueError: --bf16 requires Ampere or newer GPU",
    ], "bf16 not supported on this GPU"),
    "other_exception": ([
        "Traceback (most recent call last):",
        '  File "/tmp/intern_job.py", line 12, in <module>',
        "    cfg = json.loads(raw)",
        "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
    ], "JSONDecodeError"),
}


@pytest.mark.parametrize("name", sorted(TAILS))
def test_each_failure_gets_its_signature(name: str) -> None:
    lines, label = TAILS[name]
    found = error_signature(lines)
    assert found is not None and found.signature == label, (name, found)
    assert found.line in [line.strip()[:300] for line in lines]


def test_the_latest_evidence_wins() -> None:
    lines = ["WARNING: ConnectionError: HTTPSConnectionPool(host='huggingface.co'): Read timed out; retrying",
             *TAILS["cuda_oom"][0]]
    assert error_signature(lines).signature == "CUDA out of memory"  # type: ignore[union-attr]


def test_a_timeout_status_message_is_a_timeout() -> None:
    assert error_signature(["step 900/1000"], "Job timed out after 30m").signature == "timeout"  # type: ignore[union-attr]


def test_a_clean_log_has_no_signature() -> None:
    assert error_signature([*TRAINING, "Training finished."]) is None
    # words in prose are not errors: no exception line, no known failure text
    assert error_signature(["Saving the model; memory use is fine", "Pushing to the Hub"]) is None


def test_final_metrics_take_the_latest_value_of_each() -> None:
    lines = [*TRAINING,
             "{'eval_loss': 1.3521, 'eval_runtime': 12.1, 'eval_samples_per_second': 41.3, 'epoch': 1.0}",
             "{'train_runtime': 1234.5678, 'train_samples_per_second': 8.1, 'train_steps_per_second': 0.81, "
             "'train_loss': 1.6623, 'epoch': 1.0}"]
    m = final_metrics(lines)
    assert m["loss"] == 1.4218 and m["eval_loss"] == 1.3521 and m["train_loss"] == 1.6623
    assert m["train_runtime"] == 1234.5678 and m["epoch"] == 1.0
    assert headline_metric(m) == ("eval_loss", 1.3521)


def test_nan_metrics_are_kept_as_text() -> None:
    m = final_metrics(TAILS["nan_loss"][0])
    assert m["loss"] == "nan" and m["grad_norm"] == "nan"
    assert final_metrics(["no metrics here", "{'not': 'a metric line'}"]) == {}
