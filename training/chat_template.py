"""Chat templates for training: the base's own, with the assistant's tokens marked.

trl's assistant-only loss finds the tokens to train on through `{% generation %}` markers in
the chat template. Few templates have them. For a ChatML base (SmolLM2, Qwen2.5) the marked
template below renders every conversation the twin trains on exactly as the base's own template
does (the twin's prompts always open with a system message); that is checked on a probe
conversation rather than assumed. Other bases get trl's own training template for their family.
The served model keeps its original template: only training uses the marked one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# ChatML with `{% generation %}` around the assistant's content and its end-of-turn token, so
# the model also learns to stop.
CHATML_TRAINING_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}"
    "{{ message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

PROBE = [
    {"role": "system", "content": "You are a test."},
    {"role": "user", "content": "First question?"},
    {"role": "assistant", "content": "First answer."},
    {"role": "user", "content": "Second question?"},
    {"role": "assistant", "content": "Second answer."},
]


class ChatTemplateError(ValueError):
    """The base's chat template cannot be trained with assistant-only loss."""


def training_chat_template(tokenizer: PreTrainedTokenizerBase) -> str:
    """A template with generation markers that renders like the tokenizer's own."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    own = tokenizer.chat_template
    if not isinstance(own, str) or not own.strip():
        raise ChatTemplateError("the base model has no chat template; the twin needs a chat model")
    if has_generation_markers(own):
        return own
    if "<|im_start|>" in own and _renders_alike(tokenizer, own, CHATML_TRAINING_TEMPLATE):
        return CHATML_TRAINING_TEMPLATE
    try:
        patched = get_training_chat_template(tokenizer)
    except (ValueError, KeyError) as exc:
        raise ChatTemplateError(
            f"no training template for this base's chat template ({exc}); use a ChatML model "
            "or one of the families trl supports"
        ) from exc
    return patched or own


def _renders_alike(tokenizer: PreTrainedTokenizerBase, own: str, marked: str) -> bool:
    for messages, prompt in ((PROBE, False), (PROBE[:-1], True)):
        theirs = tokenizer.apply_chat_template(
            messages, chat_template=own, tokenize=False, add_generation_prompt=prompt
        )
        ours = tokenizer.apply_chat_template(
            messages, chat_template=marked, tokenize=False, add_generation_prompt=prompt
        )
        if theirs != ours:
            return False
    return True
