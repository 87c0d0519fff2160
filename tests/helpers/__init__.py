"""Test helpers: fake servers (fake_anthropic, fake_vllm, fake_hosted: Gemini, Anthropic and
OpenAI APIs for the hosted generation backends), fixtures (judge_fixtures) and
``run_cli``. The tiny-model builders live in :mod:`kmedqa.testing` (benchmarks use them too)."""
