"""Judge backends: each implements kmedqa.judge.base.JudgeBackend."""
