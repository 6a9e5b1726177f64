"""Problem -> chat messages -> prompt token ids, through the tokenizer's chat template."""
from __future__ import annotations

from judge.problem import Problem


class PromptBuilder:
    def __init__(self, tokenizer, system_prompt: str = "", instruction: str = ""):
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("the tokenizer has no chat_template; rollout prompts need one "
                             "(set tokenizer.chat_template or use the model's instruct tokenizer)")
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        self.instruction = instruction

    def messages(self, problem: Problem) -> list[dict[str, str]]:
        meta = problem.metadata
        statement = meta.get("question_content")
        if not statement:
            raise ValueError(f"problem {problem.id!r} has no statement (metadata.question_content)")
        parts = [self.instruction, meta.get("question_title") or "", statement]
        if meta.get("starter_code"):
            parts.append(f"Complete this starter code:\n```python\n{meta['starter_code']}\n```")
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return messages + [{"role": "user", "content": "\n\n".join(p for p in parts if p)}]

    def prompt_ids(self, problem: Problem) -> list[int]:
        text = self.tokenizer.apply_chat_template(self.messages(problem), tokenize=False, add_generation_prompt=True)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
