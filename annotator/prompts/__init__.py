"""Prompt templates: versioned ``prompts/<codebook>/<name>.v<N>.jinja`` files turned into chat messages.

A template is YAML front matter (model parameters, few-shot examples) plus a Jinja body whose lines
``[system]``, ``[user]`` and ``[assistant]`` start messages. The body runs in an immutable sandbox with
StrictUndefined, so a typo is an error, not an empty string. Role markers are rewritten to calls that emit a
per-render random sentinel; the rendered text is split on it, so document text (data, never template) can
neither create a role nor be evaluated. Every error names ``file:line`` as the user sees the file.

The package: ``refs`` (CODEBOOK/NAME.vN references), ``template`` (parse and render), ``files`` (the template
files on disk).
"""

from annotator.prompts.files import list_prompts, load_prompt, new_prompt, prompt_diff
from annotator.prompts.refs import PromptRef, parse_ref
from annotator.prompts.template import (
    DocumentInput,
    Example,
    Message,
    PromptMeta,
    PromptParams,
    PromptTemplate,
    parse_prompt,
)

__all__ = [
    "DocumentInput",
    "Example",
    "Message",
    "PromptMeta",
    "PromptParams",
    "PromptRef",
    "PromptTemplate",
    "list_prompts",
    "load_prompt",
    "new_prompt",
    "parse_prompt",
    "parse_ref",
    "prompt_diff",
]
