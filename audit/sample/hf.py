"""Local transformers backend for generative models (causal LMs and text2text: summarisation, translation).

Each prompt's k samples are one batch (`num_return_sequences=k`) under a seed derived from
the suite seed and the prompt id, so a resumed run regenerates exactly what an uninterrupted
run would have. `trust_remote_code` is off unless the user passes the flag.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from audit.config import ModelKind, Sampling
from audit.errors import CollectionError, UsageError
from audit.registry import PluginOptions, coerce_options
from audit.suites import Prompt

log = logging.getLogger("audit")


def _import_torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            "the hf backend needs torch and transformers",
            "pip install 'model-risk-audit[models]' (install torch first, see README)",
        ) from exc
    return torch


def max_positions(config: Any) -> int | None:
    """How many tokens the model's positions allow (None when unbounded or unknown)."""
    for key in ("n_positions", "max_position_embeddings", "n_ctx", "max_sequence_length"):
        v = getattr(config, key, None)
        if isinstance(v, int) and 0 < v < 10**7:
            return v
    return None


class HFBackendOptions(PluginOptions):
    """--backend-option keys of the hf backend."""

    model: str | None = Field(None, description="model folder or Hub id (default: REF)")
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description="auto, cpu, cuda, cuda:N"
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    kind: ModelKind | None = Field(None, description="override the detected model kind")
    batch_prompts: int = Field(1, ge=1, le=1024, description="generate N prompts together (GPU)")
    batch_tokens: int | None = Field(None, ge=64, description="token budget of a prompt batch")


def loading_report(model: Any, info: Any) -> dict[str, Any]:
    """What transformers said when loading: the model class and the weights it newly initialised.

    `missing_keys` are parameters the checkpoint did not hold, so transformers filled them with
    random values (a head the checkpoint was never trained with, for instance).
    """
    missing = sorted(str(k) for k in (info or {}).get("missing_keys") or ())
    return {"class": type(model).__name__, "missing_keys": missing}


class HFBackend:
    """Generates with transformers on CUDA when present, else CPU."""

    name = "hf"
    Options = HFBackendOptions

    def __init__(
        self,
        options: HFBackendOptions | dict[str, str] | None = None,
        model_source: str | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        opts = coerce_options(HFBackendOptions, options, "backend 'hf'").model_dump(exclude_none=True)
        self.source = opts.get("model") or model_source
        if not self.source:
            raise UsageError(
                "the hf backend needs a model",
                "give a Hub id or folder as REF, or --backend-option model=PATH",
            )
        self.revision = revision if not opts.get("model") else None
        self.device_opt = opts.get("device", "auto")
        self.dtype = opts.get("dtype", "auto")
        self.kind = opts.get("kind")
        self.trust_remote_code = trust_remote_code
        self.batch_prompts, self.batch_tokens = opts.get("batch_prompts", 1), opts.get("batch_tokens")
        self._model: Any = None
        self._tok: Any = None
        self._seq2seq = False
        self._device = "cpu"
        # What transformers reported when loading: the class and the newly initialised (missing) weights.
        self.loading_info: dict[str, Any] = {}

    def settings(self) -> dict[str, Any]:
        return {
            "backend": "hf",
            "model": self.source,
            "revision": self.revision,
            "dtype": self.dtype,
            "kind": self.kind,
            "trust_remote_code": self.trust_remote_code,
            # Batched samples depend on the batch composition: keyed apart from per-prompt ones.
            **(
                {"batch_prompts": self.batch_prompts, "batch_tokens": self.batch_tokens}
                if self.batch_prompts > 1
                else {}
            ),
        }

    def _load(self) -> None:
        torch = _import_torch()
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        kw: dict[str, Any] = {"revision": self.revision, "trust_remote_code": self.trust_remote_code}
        source = str(self.source)
        try:
            config = AutoConfig.from_pretrained(source, **kw)
            self._seq2seq = self.kind == "text2text-generation" or (
                self.kind is None and bool(getattr(config, "is_encoder_decoder", False))
            )
            dtype = {
                "auto": "auto",
                "float32": torch.float32,
                "float16": torch.float16,
                "bfloat16": torch.bfloat16,
            }.get(self.dtype)
            if dtype is None:
                raise UsageError(f"unknown dtype '{self.dtype}'", "use auto, float32, float16 or bfloat16")
            cls = AutoModelForSeq2SeqLM if self._seq2seq else AutoModelForCausalLM
            self._tok = AutoTokenizer.from_pretrained(source, **kw)
            loaded: Any = cls.from_pretrained(source, dtype=dtype, output_loading_info=True, **kw)
            self._model, info = loaded
            self.loading_info = loading_report(self._model, info)
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - transformers raises many types; report one clear line
            raise CollectionError(
                f"cannot load model {self.source} with transformers: {type(exc).__name__}: {str(exc)[:200]}",
                "check the model kind (--backend-option kind=...), or HF_HUB_OFFLINE and the cache",
            ) from exc
        self._device = (
            "cuda"
            if self.device_opt == "auto" and torch.cuda.is_available()
            else ("cpu" if self.device_opt == "auto" else self.device_opt)
        )
        self._model.to(self._device).eval()
        if self._tok.pad_token_id is None:
            self._tok.pad_token = self._tok.eos_token
        log.info("loaded %s on %s", self.source, self._device)

    def generate_many(
        self, suite: str, prompts: list[Prompt], sampling: Sampling, seeds: dict[str, int]
    ) -> Iterator[tuple[Prompt, list[str]]]:
        if self._model is None:
            self._load()
        torch = _import_torch()
        k = sampling.samples_per_prompt
        do_sample = sampling.temperature > 0
        if self.batch_prompts > 1:  # cross-prompt batches (audit.sample.hf_batch)
            from audit.sample.hf_batch import generate_batched

            limit = max_positions(self._model.config) or 1024
            room = max(8, min(1024, limit - (0 if self._seq2seq else sampling.max_new_tokens)))
            yield from generate_batched(self, prompts, sampling, seeds, room)
            return
        for p in prompts:
            limit = max_positions(self._model.config) or 1024
            room = max(8, min(1024, limit - (0 if self._seq2seq else sampling.max_new_tokens)))
            self._tok.truncation_side = "left"  # keep the end of a long prompt, where the continuation starts
            enc = self._tok(p.text, return_tensors="pt", truncation=True, max_length=room).to(self._device)
            torch.manual_seed(seeds[p.id])
            gen_kw: dict[str, Any] = {
                "max_new_tokens": sampling.max_new_tokens,
                "num_return_sequences": k,
                "do_sample": do_sample,
                "pad_token_id": self._tok.pad_token_id,
            }
            if do_sample:
                gen_kw.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
            with torch.inference_mode():
                out = self._model.generate(**enc, **gen_kw)
            new = out if self._seq2seq else out[:, enc["input_ids"].shape[1] :]
            yield p, self._tok.batch_decode(new, skip_special_tokens=True)


# --------------------------------------------------------------------------- other model kinds
KIND_BY_PIPELINE_TAG = {
    "text-generation": "text-generation",
    "text2text-generation": "text2text-generation",
    "summarization": "text2text-generation",
    "translation": "text2text-generation",
    "fill-mask": "fill-mask",
    "text-classification": "text-classification",
    "zero-shot-classification": "text-classification",
    "token-classification": "token-classification",
    "question-answering": "question-answering",
    "sentence-similarity": "sentence-embeddings",
    "feature-extraction": "sentence-embeddings",
}
_ARCH_SUFFIX = (
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForMaskedLM", "fill-mask"),
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForConditionalGeneration", "text2text-generation"),
)


def detect_kind(
    pipeline_tag: str | None, library: str | None, architectures: tuple[str, ...] = ()
) -> str | None:
    """The model kind from the card's pipeline tag, its library, or config.json's architectures."""
    if library == "sentence-transformers":
        return "sentence-embeddings"
    if pipeline_tag and pipeline_tag in KIND_BY_PIPELINE_TAG:
        return KIND_BY_PIPELINE_TAG[pipeline_tag]
    for arch in architectures:
        for suffix, kind in _ARCH_SUFFIX:
            if arch.endswith(suffix):
                return kind
    return None


class HFModel:
    """Non-generative kinds through transformers / sentence-transformers, batched, on CUDA when present."""

    def __init__(
        self,
        source: str,
        revision: str | None = None,
        trust_remote_code: bool = False,
        device: str = "auto",
        batch_size: int = 32,
    ) -> None:
        self.source, self.revision, self.trust_remote_code = source, revision, trust_remote_code
        self.batch_size = batch_size
        torch = _import_torch()
        self.device = (
            "cuda"
            if device == "auto" and torch.cuda.is_available()
            else ("cpu" if device == "auto" else device)
        )
        self._cache: dict[str, Any] = {}
        # Per auto class: what transformers reported when loading (see `loading_report`).
        self.loading_info: dict[str, dict[str, Any]] = {}

    def _kw(self) -> dict[str, Any]:
        return {"revision": self.revision, "trust_remote_code": self.trust_remote_code}

    def _load(self, cls_name: str) -> tuple[Any, Any]:
        if cls_name not in self._cache:
            import transformers
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            try:
                tok = transformers.AutoTokenizer.from_pretrained(self.source, **self._kw())
                model, info = getattr(transformers, cls_name).from_pretrained(
                    self.source, output_loading_info=True, **self._kw()
                )
                model = model.to(self.device).eval()
                self.loading_info[cls_name] = loading_report(model, info)
            except Exception as exc:  # noqa: BLE001
                raise CollectionError(
                    f"cannot load {self.source} as {cls_name}: {type(exc).__name__}: {str(exc)[:200]}",
                    "check the model kind, or HF_HUB_OFFLINE and the cache",
                ) from exc
            self._cache[cls_name] = (tok, model)
        return self._cache[cls_name]  # type: ignore[no-any-return]

    def fill_mask(self, texts: list[str], top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k fillers (token, probability) of the first mask token in each text (`[MASK]` or the model's)."""
        torch = _import_torch()
        tok, model = self._load("AutoModelForMaskedLM")
        mask = tok.mask_token
        out: list[list[tuple[str, float]]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = [
                t.replace("[MASK]", mask).replace("<mask>", mask)
                for t in texts[start : start + self.batch_size]
            ]
            enc = tok(batch, return_tensors="pt", padding=True, truncation=True).to(self.device)
            with torch.inference_mode():
                logits = model(**enc).logits
            for row in range(len(batch)):
                pos = (enc["input_ids"][row] == tok.mask_token_id).nonzero()
                if len(pos) == 0:
                    raise UsageError(
                        f"no mask token in: {batch[row][:80]}", f"use {mask} (or [MASK]) in fill-mask prompts"
                    )
                probs = logits[row, int(pos[0])].softmax(-1)
                top = probs.topk(top_k)
                out.append(
                    [
                        (tok.decode([int(i)]).strip(), float(p))
                        for p, i in zip(top.values, top.indices, strict=True)
                    ]
                )
        return out

    def classify(self, texts: list[str]) -> list[dict[str, float]]:
        """Label probabilities per text (softmax; sigmoid for multi-label models)."""
        torch = _import_torch()
        tok, model = self._load("AutoModelForSequenceClassification")
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        multi = getattr(model.config, "problem_type", None) == "multi_label_classification"
        out: list[dict[str, float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            enc = tok(batch, return_tensors="pt", padding=True, truncation=True).to(self.device)
            with torch.inference_mode():
                logits = model(**enc).logits
            probs = logits.sigmoid() if multi else logits.softmax(-1)
            out.extend({lab: float(p) for lab, p in zip(labels, row, strict=True)} for row in probs.cpu())
        return out

    def embed(self, texts: list[str]) -> Any:
        """Sentence embeddings (sentence-transformers), L2-normalised, as a numpy array."""
        if "st" not in self._cache:
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            except ImportError as exc:
                raise UsageError(
                    "sentence embeddings need sentence-transformers", "pip install sentence-transformers"
                ) from exc
            try:
                self._cache["st"] = SentenceTransformer(
                    self.source,
                    device=self.device,
                    revision=self.revision,
                    trust_remote_code=self.trust_remote_code,
                )
            except Exception as exc:  # noqa: BLE001
                raise CollectionError(
                    f"cannot load {self.source} with sentence-transformers: {type(exc).__name__}",
                    "check the model folder, or HF_HUB_OFFLINE and the cache",
                ) from exc
        return self._cache["st"].encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )


def shared_positions(ids1: list[int], ids2: list[int]) -> tuple[list[int], list[int]]:
    """Positions of the tokens two sequences share (difflib 'equal' blocks), as CrowS-Pairs aligns them."""
    import difflib

    s1, s2 = [str(i) for i in ids1], [str(i) for i in ids2]
    t1: list[int] = []
    t2: list[int] = []
    for op, a0, a1, b0, b1 in difflib.SequenceMatcher(None, s1, s2).get_opcodes():
        if op == "equal":
            t1.extend(range(a0, a1))
            t2.extend(range(b0, b1))
    return t1, t2


class MaskedLMScorer:
    """Pseudo-log-likelihoods with a masked LM: mask one position at a time, sum log P(original token)."""

    def __init__(self, model: HFModel) -> None:
        self.tok, self.model = model._load("AutoModelForMaskedLM")
        self.device = model.device
        self.batch_size = model.batch_size

    def encode(self, text: str) -> list[int]:
        return list(self.tok(text, truncation=True)["input_ids"])

    def pll(self, ids: list[int], positions: list[int]) -> float:
        """Sum over `positions` of log P(ids[p] | ids with p masked), batched over positions."""
        torch = _import_torch()
        if not positions:
            return 0.0
        base = torch.tensor(ids, device=self.device)
        total = 0.0
        for start in range(0, len(positions), self.batch_size):
            pos = positions[start : start + self.batch_size]
            batch = base.repeat(len(pos), 1)
            rows = torch.arange(len(pos), device=self.device)
            cols = torch.tensor(pos, device=self.device)
            batch[rows, cols] = self.tok.mask_token_id
            with torch.inference_mode():
                logp = self.model(input_ids=batch, attention_mask=torch.ones_like(batch)).logits.log_softmax(
                    -1
                )
            total += float(logp[rows, cols, base[cols]].sum())
        return total


class ChoiceScorer:
    """Multiple choice with a causal LM: the option with the highest log-likelihood after the prompt."""

    def __init__(self, model: HFModel) -> None:
        self.tok, self.model = model._load("AutoModelForCausalLM")
        self.device = model.device

    def loglik(self, prompt: str, option: str) -> float:
        torch = _import_torch()
        p_ids = self.tok(prompt)["input_ids"]
        o_ids = self.tok(option)["input_ids"]
        if self.tok.bos_token_id is not None and o_ids[:1] == [self.tok.bos_token_id]:
            o_ids = o_ids[1:]
        limit = max_positions(self.model.config)
        if limit and len(p_ids) + len(o_ids) > limit:
            p_ids = p_ids[len(p_ids) + len(o_ids) - limit :]  # keep the end of the prompt, next to the answer
        ids = torch.tensor([p_ids + o_ids], device=self.device)
        with torch.inference_mode():
            logp = self.model(input_ids=ids).logits.log_softmax(-1)[0]
        positions = torch.arange(len(p_ids) - 1, len(p_ids) + len(o_ids) - 1, device=self.device)
        return float(logp[positions, ids[0, len(p_ids) :]].sum())

    def choose(self, prompt: str, options: list[str]) -> int:
        scores = [self.loglik(prompt, " " + o) for o in options]
        return int(max(range(len(options)), key=lambda i: scores[i]))


class ExtractiveQA:
    """Extractive question answering: the highest-scoring start/end span of the context."""

    def __init__(self, model: HFModel) -> None:
        self.tok, self.model = model._load("AutoModelForQuestionAnswering")
        self.device = model.device

    def answer(self, question: str, context: str, max_len: int = 30) -> str:
        torch = _import_torch()
        enc = self.tok(
            question,
            context,
            return_tensors="pt",
            truncation="only_second",
            max_length=384,
            return_offsets_mapping=True,
        )
        offsets = enc.pop("offset_mapping")[0]
        seq = enc.sequence_ids(0)
        enc = enc.to(self.device)
        with torch.inference_mode():
            out = self.model(**enc)
        start, end = out.start_logits[0].cpu(), out.end_logits[0].cpu()
        ctx_idx = [i for i, s in enumerate(seq) if s == 1]
        best, best_span = -float("inf"), (0, 0)
        for i in ctx_idx:
            for j in ctx_idx:
                if i <= j < i + max_len and float(start[i] + end[j]) > best:
                    best, best_span = float(start[i] + end[j]), (i, j)
        a, b = int(offsets[best_span[0]][0]), int(offsets[best_span[1]][1])
        return context[a:b]


def tag_words(model: HFModel, texts: list[str]) -> list[list[tuple[str, str, float]]]:
    """Token classification per whitespace word: (word, label of its first sub-token, that label's probability)."""
    torch = _import_torch()
    tok, net = model._load("AutoModelForTokenClassification")
    labels = net.config.id2label
    out: list[list[tuple[str, str, float]]] = []
    for start in range(0, len(texts), model.batch_size):
        batch = [t.split() for t in texts[start : start + model.batch_size]]
        enc = tok(batch, is_split_into_words=True, return_tensors="pt", padding=True, truncation=True)
        with torch.inference_mode():
            probs = net(**{k: v.to(model.device) for k, v in enc.items()}).logits.softmax(-1).cpu()
        for row, words in enumerate(batch):
            seen: dict[int, tuple[str, str, float]] = {}
            for pos, wid in enumerate(enc.word_ids(row)):
                if wid is not None and wid not in seen:
                    p = probs[row, pos]
                    k = int(p.argmax())
                    seen[wid] = (words[wid], str(labels[k]), float(p[k]))
            out.append([seen[i] for i in sorted(seen)])
    return out
