"""Realistic secret shapes (generated from a fixed seed, so none of them is a real credential) and
ordinary ML text that must pass through the redactor unchanged."""

from __future__ import annotations

import base64
import json
import random
import string

_R = random.Random(20240601)
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
B64URL = ALNUM + "-_"


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(_R.choice(alphabet) for _ in range(n))


def letters(n: int) -> str:
    # at least one upper and one lower case letter, like the Hub's tokens
    return rand(1, string.ascii_uppercase) + rand(1, string.ascii_lowercase) + rand(n - 2, string.ascii_letters)


def _jwt() -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': '1234567890', 'exp': 1900000000})}.{rand(43, B64URL)}"


def pem(kind: str) -> str:
    body = "\n".join(rand(64, ALNUM + "+/") for _ in range(6))
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


HF = "hf_" + letters(34)
SLACK_BOT = f"xoxb-{rand(12, string.digits)}-{rand(13, string.digits)}-{rand(24)}"
AWS_SECRET = rand(40, ALNUM + "/+")
KNOWN_SETTING = "intern-local-" + rand(20)
WANDB = rand(40, HEX)
SIGNING = rand(32, HEX)
DISCORD = f"M{rand(25, B64URL)}.{rand(6, B64URL)}.{rand(38, B64URL)}"
DISCORD_2 = f"N{rand(23, ALNUM)}.{rand(6, B64URL)}.{rand(27, B64URL)}"
CLI_PASSWORD = f"Pg{rand(12)}9"
QUERY_TOKEN = rand(40)
FERNET = rand(43, B64URL) + "="

# (label, text containing the secret, the secret or a part of it that must not survive)
SECRETS: list[tuple[str, str, str]] = [
    ("hf token bare", f"using token {HF} for the push", HF),
    ("hf token env", f"HF_TOKEN={HF}", HF),
    ("hf token bearer", f"curl -H 'Authorization: Bearer {HF}' https://huggingface.co/api/whoami-v2", HF),
    ("hf oauth", f"access token hf_oauth_{rand(40)}", "hf_oauth_"),
    ("hf org token", f"org token api_org_{letters(34)} was revoked", "api_org_"),
    ("slack bot", f"SLACK_BOT_TOKEN set to {SLACK_BOT} in the shell", SLACK_BOT),
    ("slack user", f"token=xoxp-{rand(12, string.digits)}-{rand(12, string.digits)}-{rand(13, string.digits)}-{rand(32, HEX)}",
     "xoxp-"),
    ("slack rotating", f"refresh gave xoxe.xoxp-1-{rand(150)}", "xoxp-1-"),
    ("slack app-level", f"SLACK_APP_TOKEN: xapp-1-A{rand(10, string.ascii_uppercase + string.digits)}-{rand(13, string.digits)}-{rand(64, HEX)}",
     "xapp-1-"),
    ("slack webhook", f"post to https://hooks.slack.com/services/T{rand(8)}/B{rand(10)}/{rand(24)} now", "/B"),
    ("openai legacy", f"OPENAI key sk-{rand(20)}T3BlbkFJ{rand(20)} leaked", "T3BlbkFJ"),
    ("openai project", f"key: sk-proj-{rand(74, B64URL)}A1{rand(80, B64URL)}", "sk-proj-"),
    ("openai service account", f"sk-svcacct-{rand(60, B64URL)}9", "sk-svcacct-"),
    ("anthropic", f"ANTHROPIC_API_KEY=sk-ant-api03-{rand(93, B64URL)}AA", "sk-ant-api03-"),
    ("openrouter", f"Authorization: Bearer sk-or-v1-{rand(64, HEX)}", "sk-or-v1-"),
    ("deepseek", f"deepseek client with api_key sk-{rand(32, HEX)} ready", "sk-"),
    ("github classic", f"git clone https://ghp_{rand(36)}@github.com/acme/train.git", "ghp_"),
    ("github fine-grained", f"GITHUB_TOKEN=github_pat_{rand(22)}_{rand(59)}", "github_pat_"),
    ("github app", f"installation token ghs_{rand(36)} expires in 1h", "ghs_"),
    ("gitlab", f"glpat-{rand(20, B64URL)} is the CI token", "glpat-"),
    ("aws access key id", f"aws_access_key_id = AKIA{rand(16, string.ascii_uppercase + string.digits)}", "AKIA"),
    ("aws secret ini", f"[default]\naws_secret_access_key = {AWS_SECRET}\nregion = us-east-1", AWS_SECRET),
    ("aws sts json", json.dumps({"Credentials": {"AccessKeyId": "ASIA" + rand(16, string.ascii_uppercase + string.digits),
                                                 "SecretAccessKey": rand(40, ALNUM + "/+"),
                                                 "SessionToken": "IQoJb3JpZ2luX2VjE" + rand(300, ALNUM + "/+")}}),
     "IQoJb3JpZ2luX2VjE"),
    ("google api key", f"https://generativelanguage.googleapis.com/v1/models?key=AIza{rand(35, B64URL)}", "AIza"),
    ("groq", f"GROQ_API_KEY=gsk_{rand(52)}", "gsk_"),
    ("jwt", f"the dataset viewer answered with token {_jwt()} in the header", "eyJ"),
    ("pem rsa", f"key file:\n{pem('RSA ')}\nend", "PRIVATE KEY-----\n"),
    ("pem openssh", f"{pem('OPENSSH ')}", "PRIVATE KEY-----\n"),
    ("postgres url", f"INTERN_DATABASE_URL=postgresql+asyncpg://intern:S3cr3t{rand(12)}@db.internal:5432/intern", "S3cr3t"),
    ("mysql url with @ in password", f"engine = create_engine('mysql+pymysql://app:p@ss{rand(10)}@10.0.0.5/app')", "p@ss"),
    ("redis url without user", f"broker: redis://:R3dis{rand(16)}@cache:6379/0", "R3dis"),
    ("wandb key", f"WANDB_API_KEY={WANDB}", WANDB),
    ("slack signing secret", f'export SLACK_SIGNING_SECRET="{SIGNING}"', SIGNING),
    ("discord bot token", f"DISCORD_TOKEN={DISCORD}", DISCORD),
    ("discord token bare", f"bot logged in with {DISCORD_2}", DISCORD_2),
    ("json password", json.dumps({"user": "ml-bot", "password": "Tr0ub4dor&" + rand(6)}), "Tr0ub4dor&"),
    ("yaml password", f"database:\n  host: db\n  password: hunt3r{rand(6)}\n", "hunt3r"),
    ("cli password flag", f"psql --password={CLI_PASSWORD} --host db", CLI_PASSWORD),
    ("replicate", f"REPLICATE_API_TOKEN=r8_{rand(37)}", "r8_"),
    ("stripe", f"sk_live_{rand(24)} in the billing service", "sk_live_"),
    ("query access token", f"GET https://example.org/api/files?access_token={QUERY_TOKEN}&page=2", QUERY_TOKEN),
    ("basic auth header", f"Authorization: Basic {base64.b64encode(b'admin:' + rand(16).encode()).decode()}", "YWRtaW46"),
    ("os.environ assignment", f'os.environ["DB_PASSWORD"] = "pw-{rand(14)}"', '"pw-'),
    ("intern secret key", f"INTERN_SECRET_KEY={FERNET}", FERNET),
    ("known setting", f"the proxy key is {KNOWN_SETTING}.", KNOWN_SETTING),
]

ORDINARY: list[str] = [
    # a training script as the model would write it
    '''from datasets import load_dataset
from transformers import AutoTokenizer
from trl import SFTConfig, SFTTrainer
import os

tokenizer = AutoTokenizer.from_pretrained("meta-llama/Llama-3.1-8B-Instruct")
tokenizer.pad_token = tokenizer.eos_token
pad_token_id = tokenizer.eos_token_id
login(token=os.environ["HF_TOKEN"])
hf_token = os.environ.get("HF_TOKEN")
token = hf_token
args = SFTConfig(output_dir="out", per_device_train_batch_size=4, gradient_accumulation_steps=8,
                 max_length=2048, push_to_hub=True, hub_model_id="acme/llama-3.1-8b-sft",
                 hub_token=os.environ.get("HF_TOKEN"), hub_private_repo=True)
trainer = SFTTrainer(model="meta-llama/Llama-3.1-8B-Instruct", args=args, train_dataset=ds)
''',
    # tokenizer config and generation settings
    json.dumps({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "pad_token": "<|finetune_right_pad_id|>",
                "unk_token": "<unk>", "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
                "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"}),
    "generate(max_new_tokens=512, temperature=0.7); max_tokens: 4096; --max_tokens 4096 --max_new_tokens 256",
    "TOKENIZERS_PARALLELISM=false HF_HUB_ENABLE_HF_TRANSFER=1 python train.py",
    'secrets={"HF_TOKEN": "$HF_TOKEN"}; env HF_TOKEN=${HF_TOKEN}; token: {{ secrets.HF_TOKEN }}; export HF_TOKEN=$HF_TOKEN',
    # ids and hashes
    "Models: Qwen/Qwen2.5-7B-Instruct, sentence-transformers/all-MiniLM-L6-v2, HuggingFaceTB/SmolLM2-1.7B-Instruct",
    "commit 3f9a2c4be1d07a9c5e6f8b0d1a2b3c4d5e6f7a8b, sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "job 6853a1b2c3d4e5f6a7b8c9d0 is RUNNING on a10g-large; session 0b3e4c2a-8f61-4d6e-9a1b-2c3d4e5f6a7b",
    "image: ghcr.io/astral-sh/uv:python3.12-bookworm@sha256:4a5c9f1e2d3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d",
    "{'loss': 1.2345, 'grad_norm': 0.98, 'learning_rate': 2e-05, 'epoch': 0.5, 'num_tokens': 1048576.0}",
    "Loading checkpoint shards: 100%|##########| 4/4 [00:12<00:00,  3.01s/it]",
    # prose with the trigger words
    "The tokenizer splits text into tokens. The secret of a good recipe is data quality; the password "
    "reset page is out of scope. Token-level accuracy rose to 71.2%. The bearer of bad news: OOM at step 40.",
    "DPO (arXiv 2305.18290) and ORPO (2403.07691) both skip the reward model; see the method section.",
    "URLs: https://huggingface.co/datasets/HuggingFaceH4/ultrachat_200k, http://localhost:8080/v1/chat/completions, "
    "https://user@example.org/repo.git, https://huggingface.co/api/models?search=llama&sort=downloads",
    "wandb: run acme/sft-llama/runs/3k2j1h4g synced; risk-aware and task-specific variants; desk-top",
    '{"token_type": "bearer", "expires_in": 3600, "scope": "read-repos"}',
    "hf_hub_download(repo_id=\"acme/data\", filename=\"train.jsonl\", token=token)\nHfApi(token=hf_token)",
    "model.safetensors.index.json: 4 shards; tensor model.layers.0.self_attn.q_proj.weight",
    "api_key = os.environ['OPENAI_API_KEY']\npassword = getpass.getpass()\nsecret_key = settings.secret_key",
    "--hub_token $HF_TOKEN --pad_token '<pad>' --push_to_hub --hub_model_id acme/smol-sft",
    "INTERN_MODEL=anthropic/claude-sonnet-4-5 INTERN_HF_NAMESPACE=acme INTERN_JOB_POLL_SECONDS=15",
]
