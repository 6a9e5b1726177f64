"""Supervised examples: JSONL rows of {"prompt", "response"} or {"messages"} -> (prompt ids, response ids)
through the model's chat template, the prompt rendered as the rollout renders it (generation prompt
added) and the response ending in the end-of-sequence token the engines stop at."""
from __future__ import annotations

from pathlib import Path

from judge.loaders.rows import jsonl_rows

Example = tuple[list[int], list[int]]


class DataError(ValueError):
    """A row that cannot become an example; the message names the file and row."""


def encode_example(tokenizer, messages: list[dict], response: str) -> Example:
    prompt_text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prompt_ids = list(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
    response_ids = list(tokenizer(response, add_special_tokens=False)["input_ids"]) + [tokenizer.eos_token_id]
    return prompt_ids, response_ids


def _row_messages(row, where: str) -> tuple[list[dict], str]:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages):
            raise DataError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
        if messages[-1]["role"] != "assistant":
            raise DataError(f"{where}: the last message must be the assistant's (the response to learn), "
                            f"got role {messages[-1]['role']!r}")
        return messages[:-1], messages[-1]["content"]
    if isinstance(row.get("prompt"), str) and isinstance(row.get("response"), str):
        return [{"role": "user", "content": row["prompt"]}], row["response"]
    raise DataError(f"{where}: a row needs string 'prompt' and 'response' keys, or 'messages'; "
                    f"got keys {sorted(row)}")


def load_examples(path: str | Path, tokenizer) -> list[Example]:
    if not getattr(tokenizer, "chat_template", None):
        raise DataError(f"{path}: the model's tokenizer has no chat template; SFT prompts are rendered with it")
    examples = []
    for number, row in jsonl_rows(path, DataError):
        where = f"{path}, row {number}"
        messages, response = _row_messages(row, where)
        if not response:
            raise DataError(f"{where}: the response is empty")
        examples.append(encode_example(tokenizer, messages, response))
    if not examples:
        raise DataError(f"{path}: no examples (the file is empty)")
    return examples
