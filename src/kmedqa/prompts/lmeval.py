"""Prompts as lm-evaluation-harness 0.4.13 builds them for a ``generate_until`` task.

A format with ``renderer: lmeval`` in ``prompts/tasks.yaml`` (``kormedmcqa_lmeval``: the
harness's ``kormedmcqa`` v3 task) is rendered here, not through kmedqa's chat messages:

* ``doc_to_text`` / the few-shot ``doc_to_text`` are the format's ``user`` / ``shot``
  templates with the task's fields (``{question}`` is ``question.strip()``, ``{A}`` …
  ``{E}`` the option texts, an absent option printed empty as ``E. ``, ``{answer_letter}``
  the gold letter of a shot).
* few-shot (``fewshot.sampler: first_n``): the first k documents of the pool, in the
  pool's order (the harness's ``fewshot`` split in its row order). The shots'
  ``doc_to_target`` is empty, so every shot is a user turn without delimiter
  (``Task.build_qa_turn``) and the plain-text prompt is their concatenation followed by
  the question (``Task.fewshot_context``).
* no chat template unless asked (``apply_chat_template``, as the harness's
  ``--apply_chat_template``): then the turns go through the tokenizer's own template
  with ``add_generation_prompt=True``, each shot its own user turn when
  ``fewshot_as_multiturn`` (the harness's default with a chat template), else collapsed
  into one user turn (``multiturn_to_singleturn``).
* tokenization as ``HFLM.tok_batch_encode``: no special tokens when the prompt already
  starts with the BOS string, else the tokenizer's defaults (Gemma adds ``<bos>``).
* stop strings: the task's ``until`` plus the EOS token's text
  (``handle_stop_sequences``), applied while decoding, output not stripped.
"""

from __future__ import annotations

from typing import Any

from kmedqa.items import OPTION_LETTERS


def doc_fields(item: dict[str, Any]) -> dict[str, str]:
    """The fields a KorMedMCQA document gives the task's jinja templates."""
    opts = list(item.get("options") or [])
    fields = {L: (opts[i] if i < len(opts) else "") for i, L in enumerate("ABCDE")}
    fields["question"] = item["question"].strip()
    idx = item.get("answer_index")
    fields["answer_letter"] = OPTION_LETTERS[idx] if idx is not None else ""
    return fields


def first_n(pool: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The harness's ``first_n`` sampler: the first ``k`` documents of the few-shot split."""
    return list(pool[:k]) if k > 0 else []


def render_lmeval(
    item: dict[str, Any],
    fmt: dict[str, Any],
    tok,
    shots: list[dict[str, Any]],
    *,
    apply_chat_template: bool = False,
    fewshot_as_multiturn: bool = True,
    template_kwargs: dict[str, Any] | None = None,
) -> tuple[str, bool]:
    """The context string the harness sends for ``item`` and whether encoding adds special tokens."""
    turns = [fmt["shot"].format(**doc_fields(s)) for s in shots]
    turns.append(fmt["user"].format(**doc_fields(item)))
    if apply_chat_template:
        if fewshot_as_multiturn:
            messages = [{"role": "user", "content": t} for t in turns]
        else:
            messages = [{"role": "user", "content": "".join(turns)}]
        text = tok.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=True,
            continue_final_message=False,
            **(template_kwargs or {}),
        )
    else:
        text = "".join(turns)
    bos = getattr(tok, "bos_token", None)
    return text, not (bos is not None and text.startswith(bos))


def stop_strings(fmt: dict[str, Any], tok) -> list[str]:
    """The task's ``until`` with the EOS token's text appended (``handle_stop_sequences``)."""
    until = list(fmt.get("stop", []))
    if tok.eos_token_id is not None:
        eos = tok.decode(tok.eos_token_id, skip_special_tokens=False)
        if eos not in until:
            until.append(eos)
    return until


def lmeval_prompt(
    item: dict[str, Any],
    fmt_name: str,
    fmt: dict[str, Any],
    tok,
    shots_pool: list[dict[str, Any]] | None,
    k: int,
    template_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One prompt of :func:`kmedqa.generation.render_prompts` for a ``renderer: lmeval`` format."""
    from kmedqa.prompts import max_new_tokens, prompt_sha

    if k and fmt.get("fewshot", {}).get("sampler") != "first_n":
        raise ValueError(f"prompt format {fmt_name}: only the first_n few-shot sampler is known")
    shots = first_n(shots_pool or [], k)
    text, special = render_lmeval(
        item,
        fmt,
        tok,
        shots,
        apply_chat_template=bool(fmt.get("apply_chat_template")),
        fewshot_as_multiturn=bool(fmt.get("fewshot_as_multiturn", True)),
        template_kwargs=template_kwargs,
    )
    return {
        "id": item["id"],
        "format": fmt_name,
        "text": text,
        "prompt_sha": prompt_sha(text),
        "max_new_tokens": max_new_tokens(item, fmt),
        "stop": stop_strings(fmt, tok),
        "shots": [s["id"] for s in shots],
        "add_special_tokens": special,
        "strip": bool(fmt.get("strip_output", True)),
        "eos": fmt.get("eos"),
    }
