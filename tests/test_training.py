"""Training: answer-only LoRA on a tiny model, clear refusals, and resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kmedqa.errors import ConfigError
from kmedqa.models import materialize
from kmedqa.testing import train_outputs

Q = "다음 중 TNF-α 억제제는?\n1) 메토트렉세이트\n2) 아달리무맙\n3) 설파살라진\n4) 프레드니솔론\n5) 하이드록시클로로퀸"
OPTS = ["메토트렉세이트", "아달리무맙", "설파살라진", "프레드니솔론", "하이드록시클로로퀸"]


def items(n, prefix="x"):
    return [
        {
            "id": f"{prefix}{i}",
            "dataset": "aihub71875",
            "task": "mcq",
            "domain": "내과",
            "q_type": "객관식",
            "question": Q + "?" * (i % 4),
            "options": OPTS,
            "answer": f"{i % 5 + 1}) {OPTS[i % 5]}",
            "answer_index": i % 5,
            "meta": {"format": "aihub"},
        }
        for i in range(n)
    ]


def training_cfg(max_steps=6, **args):
    return {
        "quantization": "none",
        "device": "cpu",
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        "args": {
            "max_steps": max_steps,
            "per_device_train_batch_size": 2,
            "learning_rate": 5e-3,
            "save_steps": 2,
            "logging_steps": 1,
            "optim": "adamw_torch",
            "bf16": False,
            "gradient_checkpointing": False,
            "eval_strategy": "no",
            **args,
        },
    }


@pytest.fixture()
def model_json(tiny_model_dir, tmp_path):
    materialize(
        "tiny",
        {"source": "local", "id": str(tiny_model_dir), "chat_template": "gemma"},
        tmp_path / "m",
    )
    return str(tmp_path / "m" / "model.json")


def run_train(model_json, out: Path, training: dict, items_n=12):
    from kmedqa.training import train

    return train(
        model_json=model_json,
        train_items=items(items_n),
        val_items=items(2, "v"),
        formats={},
        training=training,
        seed=7,
        **train_outputs(out),
    )


def test_trains_an_adapter_and_reports_parameters(model_json, tmp_path):
    s = run_train(model_json, tmp_path, training_cfg(max_steps=3))
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    assert s["global_steps"] == 3 and s["quantization"] == "none" and s["device"] == "cpu"
    p = s["params"]
    assert 0 < p["trainable"] < p["total_peft"] == p["total_unpacked"]  # nothing packed without NF4
    assert p["trainable_pct_peft"] == pytest.approx(100 * p["trainable"] / p["total_peft"])
    rows = (tmp_path / "loss.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,train_loss,val_loss,lr" and len(rows) >= 4
    assert json.loads((tmp_path / "summary.json").read_text())["n_train"] == 12
    t = s["step_time_s"]  # one clock reading per optimizer step, after the start
    assert t["steps"] == 3 and t["first_s"] > 0 and t["median_after_first_s"] > 0


def test_step_times_set_the_first_step_apart():
    from kmedqa.training.losslog import step_times

    # start, then steps of 5 s (warm-up), 1 s, 3 s, 2 s
    assert step_times([10.0, 15.0, 16.0, 19.0, 21.0]) == {
        "steps": 4,
        "first_s": 5.0,
        "median_after_first_s": 2.0,
    }
    assert step_times([10.0, 15.0, 16.0, 18.0]) == {
        "steps": 3,
        "first_s": 5.0,
        "median_after_first_s": 1.5,
    }
    assert step_times([10.0, 12.0])["median_after_first_s"] is None
    assert step_times([10.0]) is None and step_times([]) is None


def test_nf4_without_cuda_stops_with_a_clear_message(model_json, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cfg = training_cfg()
    cfg["quantization"] = "nf4"
    with pytest.raises(ConfigError, match="nf4.*CUDA"):
        run_train(model_json, tmp_path, cfg)
    assert not (tmp_path / "adapter").exists()  # no silent fallback to unquantized LoRA


def test_unknown_trainer_option_is_named(model_json, tmp_path):
    with pytest.raises(ConfigError, match="learning_rat\\b"):
        run_train(model_json, tmp_path, training_cfg(learning_rat=1e-4))


def test_bf16_on_cpu_is_refused(model_json, tmp_path):
    with pytest.raises(ConfigError, match="bf16"):
        run_train(model_json, tmp_path, training_cfg(bf16=True))


KILLABLE = """
import sys, json
sys.path.insert(0, {tests!r})
from test_training import run_train, training_cfg
from pathlib import Path
run_train({model_json!r}, Path({out!r}), training_cfg(max_steps=8))
"""


def test_a_checkpoint_killed_while_saving_is_skipped(tmp_path, caplog):
    """A kill between the weights and trainer_state.json leaves a half checkpoint: resume from
    the one before it (CI once killed the test below inside checkpoint-6's save)."""
    from kmedqa.training import last_checkpoint

    ck = tmp_path / "ckpt"
    assert last_checkpoint(ck) is None
    state = {"global_step": 4, "log_history": []}
    for n in (2, 4, 6, 8, 10):
        (ck / f"checkpoint-{n}").mkdir(parents=True)
        (ck / f"checkpoint-{n}" / "adapter_model.safetensors").write_bytes(b"x")
    for n in (2, 4):
        (ck / f"checkpoint-{n}" / "trainer_state.json").write_text(json.dumps(state))
    (ck / "checkpoint-8" / "trainer_state.json").write_text('{"global_step": 8, "log_hi')
    (ck / "checkpoint-10" / "trainer_state.json").write_text("{}")
    (ck / "checkpoint-x").mkdir()
    with caplog.at_level("WARNING", logger="kmedqa.training"):
        assert last_checkpoint(ck) == str(ck / "checkpoint-4")
    said = caplog.text
    assert "checkpoint-6" in said and "no trainer_state.json" in said
    assert "checkpoint-8" in said and "unreadable" in said
    assert "checkpoint-10" in said and "lacks" in said
    (ck / "checkpoint-10" / "trainer_state.json").write_text(json.dumps(state))
    assert last_checkpoint(ck) == str(ck / "checkpoint-10")  # numeric, not lexical, order


def test_killed_training_resumes_to_the_same_adapter(model_json, tmp_path):
    """SIGKILL after a checkpoint, rerun: same final adapter as an uninterrupted run."""
    import torch
    from safetensors.torch import load_file

    ref = tmp_path / "ref"
    run_train(model_json, ref, training_cfg(max_steps=8))

    out = tmp_path / "killed"
    code = KILLABLE.format(tests=str(Path(__file__).parent), model_json=model_json, out=str(out))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    while (
        time.time() < deadline
        and not (out / "ckpt" / "checkpoint-4" / "trainer_state.json").exists()
    ):
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "adapter").exists()

    s = run_train(model_json, out, training_cfg(max_steps=8))
    # checkpoint-4 was complete when the kill was sent; a later one may be too (or half-written,
    # then skipped); a trainer_state.json caught mid-write sends it back to checkpoint-2
    assert s["resumed_from"] in ("checkpoint-2", "checkpoint-4", "checkpoint-6")
    a, b = (
        load_file(ref / "adapter" / "adapter_model.safetensors"),
        load_file(out / "adapter" / "adapter_model.safetensors"),
    )
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k
    assert any(a[k].abs().sum() > 0 for k in a if "lora_B" in k)  # the adapter did learn something


def test_cpu_label_only_lm_head_gives_the_same_loss_and_gradients(tiny_model_dir, monkeypatch):
    """The CPU speed-up (score only labelled positions) changes time, not the numbers."""
    import torch
    import trl.trainer.utils as trl_utils
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from kmedqa.training import score_only_label_positions_on_cpu

    torch.manual_seed(0)
    ids = torch.randint(5, 300, (2, 24))
    labels = ids.clone()
    labels[:, :18] = -100  # answer-only labels, as SFT makes them

    def loss_and_grad():
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        add_fused_lm_head(model)
        out = model(
            input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels, fused_lm_head=True
        )
        out.loss.backward()
        return out.loss.detach(), model.model.layers[-1].mlp.down_proj.weight.grad.clone()

    from trl.kernels import chunked_logprob

    # the reference scores every position, as TRL does on CPU (earlier tests may have patched it)
    monkeypatch.setattr(trl_utils, "_use_triton", chunked_logprob._use_triton)
    assert trl_utils._use_triton(torch.device("cpu")) is False
    ref_loss, ref_grad = loss_and_grad()
    assert score_only_label_positions_on_cpu()
    assert trl_utils._use_triton(torch.device("cpu")) is True
    loss, grad = loss_and_grad()
    assert torch.allclose(loss, ref_loss, atol=1e-6)
    assert torch.allclose(grad, ref_grad, atol=1e-6)
