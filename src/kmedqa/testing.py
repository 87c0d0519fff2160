"""Tiny, randomly initialized models and tokenizers built offline, for tests and benchmarks.

:func:`build_tiny_model` makes a Gemma-3-style causal LM that exercises every code path of
the real models (``from_pretrained`` on a local directory, chat template, LoRA, generation)
in seconds; :func:`tiny_model_json` adds the ``model.json`` that ``materialize`` would write;
:func:`build_tiny_bert` makes an encoder for BERTScore or a BLEURT-shaped regressor. Their
outputs mean nothing: they test plumbing, not medicine. Heavy imports happen inside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]

TINY_LAYERS: dict[str, Any] = {  # the tiny Gemma 3's layer shapes
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 16,
}
TINY_SHAPE: dict[str, Any] = {**TINY_LAYERS, "max_position_embeddings": 4096, "sliding_window": 128}


def tiny_random_arch(vocab_size: int) -> dict[str, Any]:
    """A ``source: random`` architecture of :data:`TINY_LAYERS`' shapes: Gemma 3's model
    type with one sliding and one full attention layer (seconds on a CPU)."""
    return {
        "model_type": "gemma3_text",
        "vocab_size": vocab_size,
        **TINY_LAYERS,
        "sliding_window": 512,
        "layer_types": ["sliding_attention", "full_attention"],
    }


CORPUS = [
    "다음 중 류마티스 관절염 치료에 쓰이는 TNF-α 억제제는? 1) 메토트렉세이트 2) 아달리무맙",
    "정답은 2) 아달리무맙 입니다. 소아 발열 환자의 해열제는 아세트아미노펜이다.",
    "당신은 필수의료 분야의 의학 지식을 갖춘 의료 AI 어시스턴트입니다. 질문에 답하세요.",
    "A. B. C. D. E. 정답： 산부인과 소아청소년과 응급의학과 내과 객관식 단답형 서술형",
    "user model system assistant 0123456789 () .,:;?!-",
]


def build_tiny_model(outdir: str | Path, seed: int = 0, **shape: Any) -> Path:
    """A byte-level BPE tokenizer trained on :data:`CORPUS` with Gemma's chat template, and a
    random Gemma 3 text model saved beside it. ``shape`` overrides the model config (the
    benchmarks pass Gemma 3 270M's layer shapes); the default is a 2-layer, 32-wide model."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    from kmedqa.models import chat_template_text

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(CORPUS * 3, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        **{f"{role}_token": f"<{role}>" for role in ("bos", "eos", "pad", "unk")},
        additional_special_tokens=["<start_of_turn>", "<end_of_turn>"],
    )
    tok.chat_template = chat_template_text("gemma")
    tok.save_pretrained(outdir)
    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(
        **{**TINY_SHAPE, **shape},
        vocab_size=len(tok),
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=[tok.eos_token_id, tok.convert_tokens_to_ids("<end_of_turn>")],
    )
    model = Gemma3ForCausalLM(cfg)
    model.generation_config.eos_token_id = cfg.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(outdir)
    return outdir


BERT_CORPUS = [
    "the patient reports chest pain and shortness of breath since yesterday",
    "she denies fever cough or weight loss and takes metformin daily",
    "family history of diabetes; father had a myocardial infarction at fifty",
    "환자는 흉통을 호소한다. 정답은 2) 아달리무맙 입니다.",
]


def build_tiny_bert(outdir: str | Path, *, num_labels: int | None = None, seed: int = 0) -> Path:
    """A tiny random BERT (a WordPiece vocabulary of the corpus's words and characters): an
    encoder for BERTScore, or, with ``num_labels=1``, a BLEURT-shaped regression model
    (BertForSequenceClassification). The same arguments build the same files."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    # The vocabulary is listed, not trained: WordPieceTrainer breaks ties by thread timing, so a
    # trained vocabulary (and so the random model over it) differed from one build to the next.
    normalizer = normalizers.BertNormalizer(lowercase=True)
    words = sorted(
        {
            word
            for line in BERT_CORPUS
            for word, _ in pre_tokenizers.BertPreTokenizer().pre_tokenize_str(
                normalizer.normalize_str(line)
            )
        }
    )
    chars = sorted({c for w in words for c in w})
    vocab = specials + chars + [f"##{c}" for c in chars] + [w for w in words if len(w) > 1]
    tk = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tk.normalizer = normalizer
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = tk.token_to_id("[CLS]"), tk.token_to_id("[SEP]")
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    tk.decoder = decoders.WordPiece()
    tok = BertTokenizerFast(
        tokenizer_object=tk,
        **{f"{role}_token": f"[{role.upper()}]" for role in ("unk", "pad", "cls", "sep", "mask")},
        model_max_length=128,
    )
    tok.save_pretrained(outdir)
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels or 2,
        # BERT's default 0.02 leaves a random regression head all but blind to which text comes
        # first (swapping the pair moved the score by 1e-6): 0.2 makes order visible to tests.
        initializer_range=0.2 if num_labels else 0.02,
    )
    model = BertForSequenceClassification(cfg) if num_labels else BertModel(cfg)
    model.save_pretrained(outdir)
    return outdir


def tiny_model_json(root: str | Path, name: str = "tiny", **config_changes) -> Path:
    """Build the tiny model under ``root/hf`` (``config_changes`` edit its config.json) and
    write the ``model.json`` that the workflow's ``materialize`` would: returns its path."""
    import json

    root = Path(root)
    model_dir = build_tiny_model(root / "hf")
    if config_changes:
        cfg = json.loads((model_dir / "config.json").read_text())
        cfg.update(config_changes)
        (model_dir / "config.json").write_text(json.dumps(cfg))
    return write_model_json(model_dir, root / "model.json", name=name)


def write_model_json(
    model_dir: str | Path, path: str | Path, name: str = "tiny", dtype: str = "float32"
) -> Path:
    """The ``model.json`` the workflow's ``materialize`` writes for a local Gemma-style model."""
    import json

    info = {
        "name": name,
        "source": "local",
        "path": str(model_dir),
        "chat_template": "gemma",
        "dtype": dtype,
        "spec": {},
    }
    path = Path(path)
    path.write_text(json.dumps(info))
    return path


def train_outputs(
    out: str | Path, summary: str = "summary.json", checkpoints: str | Path = "ckpt"
) -> dict[str, str]:
    """The output arguments of ``kmedqa.training.train`` (and ``train_cpt``) under ``out``:
    ``adapter/``, ``loss.csv``, the summary and the checkpoint folder (``checkpoints`` is
    relative to ``out``; an absolute path stands as it is)."""
    out = Path(out)
    return {
        "adapter_dir": str(out / "adapter"),
        "loss_csv": str(out / "loss.csv"),
        "summary_json": str(out / summary),
        "checkpoint_dir": str(out / checkpoints),
    }
