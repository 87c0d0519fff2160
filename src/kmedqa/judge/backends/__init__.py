"""Judge backends: each implements kmedqa.judge.core.JudgeBackend."""
