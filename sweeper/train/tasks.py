"""Downstream tasks scored as ranked classification (as lm-evaluation-harness and OLMo do), and bits
per byte.

Each choice of an item is a sequence [BOS] (image patches) context continuation, laid out as the
training data is (sweeper.data.batches); its score is the sum of the log-likelihoods of the
continuation's tokens. The continuation is the choice, or, when the choices are images (image_match),
the context text given each image. The prediction is the best-scoring choice (`accuracy`), or the best
per byte of continuation (`accuracy_norm`, lm-evaluation-harness' acc_norm). `loss` is the right
choice's loss per token (nats), so `bpb` compares models with different tokenizers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from sweeper.data import data_config
from sweeper.data.images import patchify
from sweeper.data.shards import IGNORE
from sweeper.data.sources import packer_tokenizer
from sweeper.data.tasks import (
    N_ITEMS,
    Task,
    generated_tasks,
    generated_text,
    load_jsonl_task,
    scored_generated,
    target_texts,
)
from sweeper.data.tokenizer import CharTokenizer
from sweeper.train.device import autocast


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of `text`: the packers' tokenizers return a list, `tokenizers` an Encoding."""
    ids = tokenizer.encode(text)
    return list(getattr(ids, "ids", ids))


def bits_per_byte(loss_nats_per_token: float, n_tokens: float, n_bytes: float) -> float:
    """Loss in bits per UTF-8 byte of the scored text: loss x tokens / (bytes x ln 2). Only the ratio of
    n_tokens to n_bytes matters: bits_per_byte(loss, 1, bytes_per_token(...)) converts a mean loss."""
    return loss_nats_per_token * n_tokens / (n_bytes * math.log(2))


def bytes_per_token(tokenizer, texts) -> float:
    """UTF-8 bytes per token of `texts` under `tokenizer` (1.0 for the character tokenizer on ASCII). For
    a validation target, give its texts (sweeper.data.tasks.target_texts for the generated ones); the
    end-of-document targets it also scores are not counted (under 1% of the generated text target)."""
    n_bytes = n_tokens = 0
    for text in texts:
        n_bytes += len(text.encode("utf-8"))
        n_tokens += len(encode(tokenizer, text))
    return n_bytes / max(n_tokens, 1)


def _pixels(image, geometry) -> np.ndarray:
    """[C, H, W] float in [-0.5, 0.5], from an array (uint8 or float) or an ImageRef."""
    pix = image() if callable(image) else image
    if pix is None:
        raise ValueError("a task image did not decode")
    pix = np.asarray(pix)
    pix = pix.astype(np.float32) / 255.0 - 0.5 if pix.dtype == np.uint8 else pix.astype(np.float32)
    want = (geometry.channels, geometry.image_size, geometry.image_size)
    if pix.shape != want:
        raise ValueError(f"a task image is {pix.shape}; the model takes {want} (channels, height, width)")
    return pix


def _requests(task: Task, tokenizer, n_patch: int, max_len: int | None) -> list[tuple]:
    """One (tokens, start, image, n_bytes) per item and choice, in item-major order: the continuation's
    tokens are tokens[start:]; a context too long for max_len loses its oldest tokens."""
    out = []
    for item in task.items:
        for choice in item.choices:
            image, prefix, cont = (
                (choice, "", item.context) if item.choices_are_images else (item.image, item.context, choice)
            )
            head = [tokenizer.bos_id] + [tokenizer.pad_id] * (n_patch if image is not None else 0)
            ctx, ids = encode(tokenizer, prefix), encode(tokenizer, cont)
            if max_len is not None:
                room = max(1, max_len - len(head))
                ids = ids[:room]
                ctx = ctx[max(0, len(ctx) - (room - len(ids))) :] if room > len(ids) else []
            out.append((head + ctx + ids, len(head) + len(ctx), image, len(cont.encode("utf-8"))))
    return out


def _batch(requests: list[tuple], pad_id: int, image) -> dict:
    """The batch dict of sweeper.data.batches, right-padded to its longest sequence (causal attention:
    padding after a sequence changes nothing before it)."""
    t = max(len(r[0]) for r in requests)
    tokens = np.full((len(requests), t), pad_id, dtype=np.int64)
    targets = np.full_like(tokens, IGNORE)
    segment = np.zeros_like(tokens)
    patches = []
    for b, (ids, start, img, _) in enumerate(requests):
        tokens[b, : len(ids)] = ids
        targets[b, start - 1 : len(ids) - 1] = ids[start:]
        if img is not None:
            segment[b, 1 : 1 + image.n_patches] = 1
            patches.append(patchify(_pixels(img, image), image.patch_size))
    segment_ = torch.from_numpy(segment)
    batch = {
        "tokens": torch.from_numpy(tokens),
        "targets": torch.from_numpy(targets),
        "is_image": segment_ > 0,
        "segment": segment_,
    }
    if image is not None:
        shape = (0, image.patch_dim)
        batch["patches"] = torch.from_numpy(
            np.concatenate(patches) if patches else np.zeros(shape, np.float32)
        )
    return batch


def _head(model):
    """The output projection whose input is the scored positions' hidden states (DecoderLM and every
    kind built on it; a DeepSpeed engine wraps it as .module), or None."""
    return getattr(getattr(model, "module", model), "output", None)


def _sequence_scores(model, batch: dict) -> torch.Tensor:
    """Sum of the scored targets' log-likelihoods per sequence [B].

    The models return only a mean loss, so the logits are read off the output projection, which sees the
    scored positions in row-major order. A model without one is run one sequence at a time.
    """
    scored = batch["targets"] != IGNORE
    head = _head(model)
    if head is None:
        return torch.stack(
            [_one_sequence(model, {k: _row(batch, k, b) for k in batch}) for b in range(len(scored))]
        )
    seen: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        model(batch)
    finally:
        hook.remove()
    logp = F.log_softmax(seen[-1].float(), dim=-1).gather(1, batch["targets"][scored][:, None])[:, 0]
    rows = scored.nonzero()[:, 0]
    return torch.zeros(len(scored), device=logp.device).index_add_(0, rows, logp)


def _row(batch: dict, key: str, b: int) -> torch.Tensor:
    if key != "patches":
        return batch[key][b : b + 1]
    per = batch["is_image"].sum(dim=1)  # patches of each sequence, in order
    first = int(per[:b].sum())
    return batch["patches"][first : first + int(per[b])]


def _one_sequence(model, batch: dict) -> torch.Tensor:
    out = model(batch)
    return -out.lm_loss.float() * out.n_targets


@torch.no_grad()
def score_task(
    model,
    task: Task,
    tokenizer,
    *,
    image=None,
    device: str = "cpu",
    batch_size: int = 64,
    max_len: int | None = None,
) -> dict[str, float]:
    """Ranked-classification metrics of one task: accuracy, accuracy_norm, accuracy_stderr, loss (nats per
    token of the right continuation), bpb, n_items, n_tokens and n_bytes (of the right continuations).

    `image`: the model's ImageConfig (spec.config.image), needed for image-text tasks. `max_len`: the
    longest sequence to score (spec.seq_len: the model never trained on longer ones).
    """
    if task.modality == "image-text" and image is None:
        raise ValueError(f"task {task.name} has images and the model takes none")
    requests = _requests(task, tokenizer, image.n_patches if image is not None else 0, max_len)
    order = sorted(range(len(requests)), key=lambda i: len(requests[i][0]))  # little padding per batch
    scores = torch.empty(len(requests), dtype=torch.float64)
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            batch = _batch([requests[j] for j in idx], tokenizer.pad_id, image)
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast(device):
                scores[idx] = _sequence_scores(model, batch).double().cpu()
    finally:
        model.train(was_training)
    return _metrics(task, requests, scores)


def _metrics(task: Task, requests: list[tuple], scores: torch.Tensor) -> dict[str, float]:
    bounds = np.cumsum([0] + [len(it.choices) for it in task.items])  # jsonl items may differ in width
    correct = norm_correct = n_tokens = n_bytes = 0
    log_likelihood = choice_nll = 0.0
    for item, first, last in zip(task.items, bounds[:-1], bounds[1:]):
        s, a = scores[first:last].numpy(), item.answer
        size = np.array([r[3] for r in requests[first:last]])
        correct += int(np.argmax(s) == a)
        norm_correct += int(np.argmax(s / np.maximum(size, 1)) == a)
        n_tokens += len(requests[first + a][0]) - requests[first + a][1]
        n_bytes += int(size[a])
        log_likelihood += float(s[a])
        choice_nll += float(np.logaddexp.reduce(s) - s[a])  # -log of the right choice's share of the choices
    n = len(task.items)
    acc, loss = correct / n, -log_likelihood / max(n_tokens, 1)
    return {
        "accuracy": acc,
        "accuracy_norm": norm_correct / n,
        "accuracy_stderr": math.sqrt(acc * (1 - acc) / max(n - 1, 1)),  # lm-evaluation-harness' stderr
        "loss": loss,
        # the classification's own cross-entropy: log(choices) at chance, 0 when sure and right; unlike
        # `loss` it leaves out what the choices share (a caption's template words)
        "choice_loss": choice_nll / n,
        "bpb": bits_per_byte(loss, n_tokens, max(n_bytes, 1)),
        "n_items": n,
        "n_tokens": n_tokens,
        "n_bytes": n_bytes,
    }


def evaluate_tasks(model, tasks, tokenizer, *, image=None, device: str = "cpu", **kwargs) -> dict[str, dict]:
    """score_task for each task, by name; image-text tasks are left out for a model without `image`."""
    return {
        t.name: score_task(model, t, tokenizer, image=image, device=device, **kwargs)
        for t in tasks
        if image is not None or t.modality == "text"
    }


LOGGED = ("accuracy", "loss", "choice_loss", "accuracy_stderr", "n_items")  # per task, on the child run


def task_metrics(results: dict[str, dict]) -> dict[str, float]:
    """evaluate_tasks' results as the child run's metrics: task.<name>.accuracy, .loss, ..."""
    return {f"task.{name}.{k}": float(r[k]) for name, r in results.items() for k in LOGGED}


def downstream_metrics(model, spec, data: Mapping | None, section: Mapping, device: str = "cpu") -> dict:
    """The `tasks:` section's scores of a finished model, as child-run metrics: task.<name>.accuracy,
    .loss (nats per token of the right choice), .choice_loss, .accuracy_stderr and .n_items."""
    data, image = data or {}, data_config(spec).image
    tokenizer = packer_tokenizer(data)
    tasks = [load_jsonl_task(path, name) for name, path in (section.get("files") or {}).items()]
    if scored_generated(image, data, section.get("generated", True)):
        tasks += generated_tasks(image, int(section.get("n_items", N_ITEMS)))
    return task_metrics(
        evaluate_tasks(model, tasks, tokenizer, image=image, device=device, max_len=spec.seq_len)
    )


@functools.cache
def _generated_bytes_per_token(target: str) -> float:

    return bytes_per_token(CharTokenizer(), target_texts(target))


def bits_per_byte_metrics(losses: Mapping[str, float], data: Mapping | None) -> dict[str, float]:
    """Each text target's validation loss in bits per UTF-8 byte (bpb_<target>, and bpb: their mean),
    comparable across tokenizers. Measured where the text is the generated data's characters; a
    trained tokenizer's bytes per token are not known to the trial, so it gets none."""
    if not generated_text(data):
        return {}
    out = {
        f"bpb_{t}": bits_per_byte(float(loss), 1.0, _generated_bytes_per_token(t))
        for t, loss in losses.items()
        if t != "avg" and math.isfinite(loss)
    }
    if out:
        out["bpb"] = float(np.mean(list(out.values())))
    return out
