"""Each template family: the prompt is rendered by the model's own template, and the
training loss mask covers exactly the answer tokens (plus the end-of-turn marker)."""

from __future__ import annotations

import pytest

from kmedqa.prompts import build_messages, get_format, load_tasks
from kmedqa.prompts.chat import fit_messages, render_prompt, supports_system
from kmedqa.training import to_prompt_completion

# Stand-ins with the structure of the real templates (tests have no hub access).
CHATML = (  # Qwen2.5 / Qwen3 (with the enable_thinking switch of Qwen3)
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)
LLAMA3 = (  # Llama 3.x: a dated system header
    "{{ bos_token }}<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
    "Today Date: {{ date_string if date_string is defined else 'now' }}\n\n"
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}{% set msgs = messages[1:] %}"
    "{% else %}{% set msgs = messages %}{% endif %}<|eot_id|>"
    "{% for m in msgs %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
NO_SYSTEM = (  # Gemma 2: raises on a system message
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

ITEM = {
    "id": "aihub-1",
    "dataset": "aihub71875",
    "task": "mcq",
    "domain": "내과",
    "q_type": "객관식",
    "question": "다음 중 TNF-α 억제제는?\n1) 메토트렉세이트\n2) 아달리무맙\n3) 설파살라진\n4) 프레드니솔론\n5) 하이드록시클로로퀸",
    "options": ["메토트렉세이트", "아달리무맙", "설파살라진", "프레드니솔론", "하이드록시클로로퀸"],
    "answer": "2) 아달리무맙",
    "answer_index": 1,
    "meta": {},
}
SYSTEM = load_tasks()["system_prompts"]["essential_medical_ko"]


@pytest.fixture()
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(tiny_model_dir)
    t.add_special_tokens(
        {
            "additional_special_tokens": [
                "<|im_start|>",
                "<|im_end|>",
                "<|start_header_id|>",
                "<|end_header_id|>",
                "<|eot_id|>",
            ]
        }
    )
    return t


@pytest.mark.parametrize("family", ["gemma", "chatml", "llama3", "no_system"])
def test_system_prompt_is_kept_in_every_family(tok, family):
    if family != "gemma":
        tok.chat_template = {"chatml": CHATML, "llama3": LLAMA3, "no_system": NO_SYSTEM}[family]
    kwargs = {"date_string": "26 Jul 2024"} if family == "llama3" else None
    text = render_prompt(tok, build_messages(ITEM, get_format("aihub")), kwargs)
    assert SYSTEM in text and "아달리무맙" in text
    assert supports_system(tok, kwargs) is (family != "no_system")
    if family == "llama3":
        assert "Today Date: 26 Jul 2024" in text  # pinned, not today's date


def test_qwen3_thinking_off(tok):
    tok.chat_template = CHATML
    text = render_prompt(tok, build_messages(ITEM, get_format("aihub")), {"enable_thinking": False})
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_no_system_role_merges_into_first_user_turn(tok):
    tok.chat_template = NO_SYSTEM
    msgs = fit_messages(build_messages(ITEM, get_format("aihub")), tok)
    assert [m["role"] for m in msgs] == ["user"]
    assert msgs[0]["content"].startswith(SYSTEM) and msgs[0]["content"].endswith(ITEM["question"])


@pytest.mark.parametrize(
    "family, end",
    [
        ("gemma", "<end_of_turn>"),
        ("chatml", "<|im_end|>"),
        ("llama3", "<|eot_id|>"),
        ("no_system", "<end_of_turn>"),
    ],
)
def test_loss_mask_covers_exactly_the_answer(tok, tiny_model_dir, tmp_path, family, end):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    if family != "gemma":
        tok.chat_template = {"chatml": CHATML, "llama3": LLAMA3, "no_system": NO_SYSTEM}[family]
    kwargs = {"date_string": "26 Jul 2024"} if family == "llama3" else None
    records = to_prompt_completion([ITEM], {"aihub71875": "aihub"}, tok, kwargs)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.resize_token_embeddings(len(tok))
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(
            output_dir=str(tmp_path),
            use_cpu=True,
            bf16=False,
            report_to="none",
            max_length=1024,
            completion_only_loss=True,
        ),
        train_dataset=Dataset.from_list(records),
        processing_class=tok,
    )
    row = trainer.train_dataset[0]
    ids = row["input_ids"]
    mask = [lab != -100 for lab in row["labels"]]  # TRL folds the completion mask into the labels
    trained = tok.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert trained.strip().startswith(ITEM["answer"])
    assert trained.replace(ITEM["answer"], "", 1).strip().startswith(end)
    # everything before the answer is exactly the prompt generation sees: context, never a target
    prompt = tok.decode([i for i, m in zip(ids, mask, strict=True) if not m])
    assert prompt == render_prompt(tok, build_messages(ITEM, get_format("aihub")), kwargs)
    assert SYSTEM in prompt
    assert mask == sorted(mask)  # one contiguous answer span at the end
