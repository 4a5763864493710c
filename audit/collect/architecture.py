"""Architecture facts from `config.json`, and parameter counts (safetensors headers or an estimate)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from audit.model import ArchitectureFacts

MAX_CONFIG_BYTES = 2 * 1024 * 1024
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
# Above any physical model (the largest published models have ~2e12 parameters): a count beyond this
# is a crafted or corrupt header, flagged as implausible instead of reported.
MAX_PARAMETERS = 10**14

_CONTEXT_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "n_ctx",
    "max_sequence_length",
    "seq_length",
    "max_seq_len",
)
_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "encoder_layers")
_HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model", "dim")
_HEAD_KEYS = ("num_attention_heads", "n_head", "num_heads", "encoder_attention_heads", "n_heads")
_FFN_KEYS = ("intermediate_size", "n_inner", "ffn_dim", "d_ff", "encoder_ffn_dim", "hidden_dim")
_GATED_MLP = {
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen2_moe",
    "qwen3",
    "qwen3_moe",
    "gemma",
    "gemma2",
    "gemma3_text",
    "phi3",
    "olmo",
    "olmo2",
    "granite",
    "cohere",
    "deepseek_v2",
    "deepseek_v3",
    "internlm2",
    "stablelm",
    "starcoder2",
}
_LEARNED_POSITIONS = {
    "bert",
    "roberta",
    "xlm-roberta",
    "distilbert",
    "electra",
    "gpt2",
    "gpt_neo",
    "opt",
    "camembert",
    "deberta",
    "mpnet",
    "albert",
    "bart",
    "mbart",
    "whisper",
    "xlm",
}


def _int(cfg: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 10**12:
            return v
    return None


def load_config_json(data: bytes) -> dict[str, Any] | None:
    """Parse config.json bytes; None when it is not a JSON object of sane size."""
    if len(data) > MAX_CONFIG_BYTES:
        return None
    try:
        cfg = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return cfg if isinstance(cfg, dict) else None


def architecture_facts(cfg: dict[str, Any], source: str) -> ArchitectureFacts:
    """Read the architecture from a config dict (a multimodal model's text_config when present)."""
    inner = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else None
    c = {**cfg, **inner} if inner else cfg
    heads = _int(c, _HEAD_KEYS)
    kv = _int(c, ("num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num"))
    if kv is None and c.get("multi_query") is True:
        kv = 1
    attention = None
    if heads:
        kv_eff = kv or heads
        if kv_eff == heads:
            attention = f"multi-head ({heads} heads)"
        elif kv_eff == 1:
            attention = f"multi-query ({heads} query heads, 1 key-value head)"
        else:
            attention = f"grouped-query ({heads} query heads, {kv_eff} key-value heads)"
    sliding = c.get("sliding_window")
    sliding_window = (
        sliding if isinstance(sliding, int) and not isinstance(sliding, bool) and sliding > 0 else None
    )
    if sliding_window and attention:
        attention += f", sliding window {sliding_window}"
    archs = cfg.get("architectures")
    model_type = c.get("model_type") if isinstance(c.get("model_type"), str) else cfg.get("model_type")
    dtype = c.get("torch_dtype") or c.get("dtype")
    return ArchitectureFacts(
        model_type=str(model_type)[:100] if isinstance(model_type, str) else None,
        architectures=tuple(str(a)[:100] for a in archs[:10]) if isinstance(archs, list) else (),
        context_length=_int(c, _CONTEXT_KEYS),
        num_layers=_int(c, _LAYER_KEYS),
        hidden_size=_int(c, _HIDDEN_KEYS),
        intermediate_size=_int(c, _FFN_KEYS),
        vocab_size=_int(c, ("vocab_size", "n_vocab", "padded_vocab_size")),
        num_attention_heads=heads,
        num_key_value_heads=kv if kv else heads,
        attention=attention,
        sliding_window=sliding_window,
        num_experts=_int(c, ("num_local_experts", "num_experts", "n_routed_experts")),
        torch_dtype=str(dtype)[:20] if isinstance(dtype, str) else None,
        auto_map=_auto_map(cfg.get("auto_map")),
        source=source,
    )


def _auto_map(value: Any) -> tuple[str, ...]:
    """The custom classes config.json maps to repository code (`auto_map`)."""
    if isinstance(value, dict):
        out = []
        for k, v in list(value.items())[:20]:
            target = (
                v if isinstance(v, str) else ",".join(str(x) for x in v) if isinstance(v, list) else str(v)
            )
            out.append(f"{str(k)[:60]} -> {target[:120]}")
        return tuple(out)
    if value:
        return (str(value)[:200],)
    return ()


def estimate_parameters(cfg: dict[str, Any], arch: ArchitectureFacts) -> int | None:
    """Estimate the parameter count of a standard transformer from its config (None when not computable).

    Embeddings (+ learned positions), per layer attention projections with grouped key-value
    heads, the MLP (gated for Llama-style models, times the experts for MoE) and layer norms,
    plus an untied output head. Biases are ignored: the estimate is within a few percent.
    """
    h, n_layers, vocab = arch.hidden_size, arch.num_layers, arch.vocab_size
    if not (h and n_layers and vocab):
        return None
    heads = arch.num_attention_heads or 1
    head_dim = h // heads if heads else h
    kv = arch.num_key_value_heads or heads
    ffn = arch.intermediate_size or 4 * h
    mtype = (arch.model_type or "").lower()
    attn = 2 * h * h + 2 * h * kv * head_dim
    mlp = (3 if mtype in _GATED_MLP else 2) * h * ffn * (arch.num_experts or 1)
    per_layer = attn + mlp + 4 * h
    total = vocab * h + n_layers * per_layer + 2 * h
    if mtype in _LEARNED_POSITIONS and arch.context_length:
        total += arch.context_length * h
    if cfg.get("tie_word_embeddings") is False:
        total += vocab * h
    return int(total) if total <= MAX_PARAMETERS else None  # a crafted config: no estimate


def safetensors_parameters(path: Path) -> int | None:
    """Exact parameter count from a .safetensors file's header (no tensor data is read).

    Only a regular file is opened (never a FIFO or device, never through a link), and the header
    length is checked against the file's size before it is read. The count may exceed
    MAX_PARAMETERS for a crafted header: callers flag that instead of reporting it.
    """
    import os
    import stat

    flags = (
        os.O_RDONLY
        | getattr(os, "O_NONBLOCK", 0)
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_CLOEXEC", 0)
    )
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size < 8:
            return None
        with os.fdopen(os.dup(fd), "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n <= 0 or n > MAX_SAFETENSORS_HEADER or n > st.st_size - 8:
                return None
            header = json.loads(fh.read(n))
    except (OSError, ValueError, struct.error, RecursionError):
        return None
    finally:
        os.close(fd)
    if not isinstance(header, dict):
        return None
    total = 0
    for name, spec in header.items():
        if name == "__metadata__" or not isinstance(spec, dict):
            continue
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            return None
        count = 1
        for d in shape:
            count *= d
            count = min(count, 10**100)  # bounded big integers: a crafted header stays cheap to count
        total = min(total + count, 10**100)
    return total
