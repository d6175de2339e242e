"""The log parsers, line by line, on samples of each format training jobs print."""

from __future__ import annotations

import math
from typing import Any

import pytest

from intern.agent.logparse import LineFacts, parse_line

NAN = float("nan")
INF = float("inf")

# (line, expected) — expected is None (nothing about training) or a dict of LineFacts fields.
TRAINER = [
    ("{'loss': 1.42, 'grad_norm': 0.83, 'learning_rate': 1.9e-05, 'epoch': 0.25}",
     {"source": "trainer", "metrics": {"loss": 1.42, "grad_norm": 0.83, "learning_rate": 1.9e-05, "epoch": 0.25}}),
    ("{'loss': 0.6931, 'grad_norm': 12.503916740417480, 'learning_rate': 4.8e-05, 'epoch': 0.04}",
     {"metrics": {"loss": 0.6931, "grad_norm": 12.50391674041748, "learning_rate": 4.8e-05, "epoch": 0.04}}),
    # transformers 5 prints the values as formatted strings
    ("{'loss': '2.135', 'grad_norm': '1.052', 'learning_rate': '1.98e-05', 'epoch': '0.1'}",
     {"metrics": {"loss": 2.135, "grad_norm": 1.052, "learning_rate": 1.98e-05, "epoch": 0.1}}),
    ("{'eval_loss': 1.1875, 'eval_runtime': 3.2144, 'eval_samples_per_second': 31.11, "
     "'eval_steps_per_second': 3.889, 'epoch': 1.0}",
     {"metrics": {"eval_loss": 1.1875, "eval_runtime": 3.2144, "eval_samples_per_second": 31.11,
                  "eval_steps_per_second": 3.889, "epoch": 1.0}}),
    ("{'train_runtime': 1234.5678, 'train_samples_per_second': 8.101, 'train_steps_per_second': 1.013, "
     "'train_loss': 1.3362512, 'epoch': 3.0}",
     {"metrics": {"train_runtime": 1234.5678, "train_samples_per_second": 8.101, "train_steps_per_second": 1.013,
                  "train_loss": 1.3362512, "epoch": 3.0}}),
    ("{'loss': nan, 'grad_norm': nan, 'learning_rate': 1.2e-05, 'epoch': 0.5}",
     {"metrics": {"loss": NAN, "grad_norm": NAN, "learning_rate": 1.2e-05, "epoch": 0.5}}),
    ("{'loss': 3.4012, 'grad_norm': inf, 'learning_rate': 2e-05, 'epoch': 0.02}",
     {"metrics": {"loss": 3.4012, "grad_norm": INF, "learning_rate": 2e-05, "epoch": 0.02}}),
    ("{'loss': np.float64(1.2), 'grad_norm': np.float32(0.5), 'learning_rate': 1e-05, 'epoch': 0.75}",
     {"metrics": {"loss": 1.2, "grad_norm": 0.5, "learning_rate": 1e-05, "epoch": 0.75}}),
    ("{'loss': tensor(0.9876, device='cuda:0'), 'learning_rate': 3e-06, 'epoch': 2.0}",
     {"metrics": {"loss": 0.9876, "learning_rate": 3e-06, "epoch": 2.0}}),
    # TRL DPO: slashes in the keys, negative values
    ("{'loss': 0.6914, 'grad_norm': 3.21, 'learning_rate': 5e-07, 'rewards/chosen': -0.0012, "
     "'rewards/rejected': -0.0051, 'rewards/accuracies': 0.625, 'rewards/margins': 0.0039, "
     "'logps/chosen': -312.5, 'logps/rejected': -298.25, 'epoch': 0.08}",
     {"metrics": {"loss": 0.6914, "grad_norm": 3.21, "learning_rate": 5e-07, "rewards/chosen": -0.0012,
                  "rewards/rejected": -0.0051, "rewards/accuracies": 0.625, "rewards/margins": 0.0039,
                  "logps/chosen": -312.5, "logps/rejected": -298.25, "epoch": 0.08}}),
    # TRL SFT: token counts and accuracy, total_flos dropped
    ("{'loss': 1.0312, 'grad_norm': 0.411, 'learning_rate': 0.0002, 'num_tokens': 524288.0, "
     "'mean_token_accuracy': 0.7312, 'epoch': 0.12, 'total_flos': 1.2e+16}",
     {"metrics": {"loss": 1.0312, "grad_norm": 0.411, "learning_rate": 0.0002, "num_tokens": 524288.0,
                  "mean_token_accuracy": 0.7312, "epoch": 0.12}}),
    # a bar redrawn in place, then the dict written below it
    ("  5%|▌         | 50/1000 [00:25<07:55,  2.00it/s]\r{'loss': 2.01, 'learning_rate': 1e-05, 'epoch': 0.05}",
     {"source": "tqdm", "step": 50, "total": 1000, "metrics": {"loss": 2.01, "learning_rate": 1e-05, "epoch": 0.05}}),
    # a configuration dump is not a metrics line
    ("{'lr_scheduler_type': 'cosine', 'warmup_ratio': 0.03, 'per_device_train_batch_size': 4}", None),
    ("{'model': 'Qwen/Qwen2.5-0.5B', 'dataset': 'trl-lib/Capybara'}", None),
]

TQDM = [
    (" 45%|████▌     | 450/1000 [02:10<02:40,  3.43it/s]",
     {"source": "tqdm", "step": 450, "total": 1000, "elapsed_s": 130.0, "remaining_s": 160.0, "rate": 3.43}),
    ("450/1000 [02:10<02:40, 3.4it/s]",
     {"step": 450, "total": 1000, "elapsed_s": 130.0, "remaining_s": 160.0, "rate": 3.4}),
    ("  0%|          | 0/1000 [00:00<?, ?it/s]",
     {"step": 0, "total": 1000, "elapsed_s": 0.0, "remaining_s": None, "rate": None}),
    (" 12%|█▏        | 120/1000 [04:00<29:20,  2.00s/it]",
     {"step": 120, "total": 1000, "elapsed_s": 240.0, "remaining_s": 1760.0, "rate": 0.5}),
    ("Training:  30%|███       | 300/1000 [1:02:10<2:25:03,  12.43s/it, loss=1.23, lr=1.5e-05]",
     {"step": 300, "total": 1000, "elapsed_s": 3730.0, "remaining_s": 8703.0,
      "metrics": {"loss": 1.23, "learning_rate": 1.5e-05}}),
    ("Epoch 2/3:  50%|█████     | 250/500 [01:40<01:40,  2.50it/s, loss=0.875]",
     {"step": 250, "total": 500, "rate": 2.5, "metrics": {"loss": 0.875}}),
    # redraws in place: the last one counts
    ("  5%|▌         | 50/1000 [00:25<07:55,  2.00it/s]\r  6%|▌         | 60/1000 [00:30<07:50,  2.00it/s]",
     {"step": 60, "total": 1000, "elapsed_s": 30.0, "remaining_s": 470.0}),
    ("Map: 100%|██████████| 10000/10000 [00:02<00:00, 4521.33 examples/s]", None),
    ("Map (num_proc=4):  40%|████      | 4000/10000 [00:01<00:01, 3412.11 examples/s]", None),
    ("Loading checkpoint shards: 100%|██████████| 2/2 [00:03<00:00,  1.52s/it]", None),
    ("Generating train split: 100%|██████████| 15806/15806 [00:00<00:00, 91632.04 examples/s]", None),
    ("model.safetensors: 100%|██████████| 988M/988M [00:04<00:00, 231MB/s]", None),
    ("Fetching 3 files: 100%|██████████| 3/3 [00:01<00:00,  2.70it/s]", None),
    ("Evaluating:  60%|██████    | 15/25 [00:03<00:02,  4.80it/s]", None),
]

DEEPSPEED = [
    ("[2026-12-07 15:20:01,123] [INFO] [logging.py:128:log_dist] [Rank 0] step=100, skipped=0, "
     "lr=[1.9e-05], mom=[(0.9, 0.999)]",
     {"source": "deepspeed", "step": 100, "metrics": {"learning_rate": 1.9e-05}}),
    ("[2026-12-07 15:20:01,456] [INFO] [timer.py:264:stop] epoch=0/micro_step=40/global_step=10, "
     "RunningAvgSamplesPerSec=15.61, CurrSamplesPerSec=15.82, MemAllocated=14.2GB, MaxMemAllocated=17.9GB",
     {"source": "deepspeed", "step": 10, "metrics": {}}),
    (" iteration      100/   10000 | consumed samples:        25600 | elapsed time per iteration (ms): 512.3 | "
     "learning rate: 1.900E-05 | global batch size:   256 | lm loss: 2.345678E+00 | loss scale: 65536.0 | "
     "grad norm: 0.834 | number of skipped iterations:   0 | number of nan iterations:   0 |",
     {"source": "megatron", "step": 100, "total": 10000, "rate": pytest.approx(1000 / 512.3),
      "metrics": {"learning_rate": 1.9e-05, "loss": 2.345678, "loss_scale": 65536.0, "grad_norm": 0.834}}),
    ("[2026-12-07 15:20:02,000] [INFO] [config.py:1001:print] zero_optimization_stage ...... 3", None),
]

PLAIN = [
    ("step 10 loss 2.3", {"source": "plain", "step": 10, "total": None, "metrics": {"loss": 2.3}}),
    ("Step 10/100 | loss 2.3", {"step": 10, "total": 100, "metrics": {"loss": 2.3}}),
    ("Step 10/100 | loss 2.3456 | lr 1.0e-04 | grad_norm 0.91",
     {"step": 10, "total": 100, "metrics": {"loss": 2.3456, "learning_rate": 1e-4, "grad_norm": 0.91}}),
    ("step: 250, loss: 1.975, lr: 3e-05", {"step": 250, "metrics": {"loss": 1.975, "learning_rate": 3e-05}}),
    ("12/07/2026 15:20:01 - INFO - __main__ - Step 100: loss=2.31, lr=1.9e-05",
     {"step": 100, "metrics": {"loss": 2.31, "learning_rate": 1.9e-05}}),
    ("Epoch 1 Step 20/500 loss=2.1 val_loss=2.4", {"step": 20, "total": 500,
                                                   "metrics": {"loss": 2.1, "eval_loss": 2.4}}),
    ("[step 300] loss = nan", {"step": 300, "metrics": {"loss": NAN}}),
    ("global step 42: train loss 0.512, grad norm inf", {"step": 42, "metrics": {"train_loss": 0.512,
                                                                                 "grad_norm": INF}}),
    ("iter 1500 | loss 3.1415 | 512.0 ms/iter", {"step": 1500, "metrics": {"loss": 3.1415}}),
    ("epoch 0: perplexity: 25.3 eval_loss: 3.2", {"source": "plain", "step": None,
                                                   "metrics": {"perplexity": 25.3, "eval_loss": 3.2, "epoch": 0.0}}),
    ("Step 3: upload the dataset", None),
    ("Starting training", None),
    ("Epoch 1/3", None),
    ("Collecting trl==0.19.0", None),
    ("", None),
]


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    return bool(actual == expected)


def check(line: str, expected: dict[str, Any] | None) -> None:
    facts = parse_line(line)
    if expected is None:
        assert facts is None, f"{line!r} read as {facts}"
        return
    assert isinstance(facts, LineFacts), f"{line!r} not read"
    for key, want in expected.items():
        got = getattr(facts, key)
        if key == "metrics":
            assert set(got) == set(want), f"{line!r}: metrics {got}"
            for name, value in want.items():
                assert _same(got[name], value), f"{line!r}: {name}={got[name]} not {value}"
        else:
            assert got == want, f"{line!r}: {key}={got!r} not {want!r}"


@pytest.mark.parametrize(("line", "expected"), TRAINER)
def test_trainer_and_trl_dicts(line: str, expected: dict[str, Any] | None) -> None:
    check(line, expected)


@pytest.mark.parametrize(("line", "expected"), TQDM)
def test_tqdm_bars(line: str, expected: dict[str, Any] | None) -> None:
    check(line, expected)


@pytest.mark.parametrize(("line", "expected"), DEEPSPEED)
def test_deepspeed_and_megatron_lines(line: str, expected: dict[str, Any] | None) -> None:
    check(line, expected)


@pytest.mark.parametrize(("line", "expected"), PLAIN)
def test_plain_prints(line: str, expected: dict[str, Any] | None) -> None:
    check(line, expected)
